import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { JOB_DATA_CORS } from '../services/storage/cors.js';
import { JOB_DATA_PREFIX } from './config.js';

export interface StorageProps {
  jobDataExpiryDays: number;
}

/** The job-data bucket and the cluster's two secrets: the clients' token and the master<->worker token. */
export class Storage extends Construct {
  readonly bucket: s3.Bucket;
  /** DIPS_TOKEN: clients send it as a Bearer token to the API. */
  readonly clientToken: secretsmanager.Secret;
  /** DIPS_WORKER_TOKEN: master and workers authenticate each other with it; no client route accepts it. */
  readonly workerToken: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);

    this.bucket = new s3.Bucket(this, 'JobData', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      cors: [
        {
          allowedMethods: JOB_DATA_CORS.allowedMethods.map((method) => s3.HttpMethods[method]),
          allowedOrigins: [...JOB_DATA_CORS.allowedOrigins],
          exposedHeaders: [...JOB_DATA_CORS.exposedHeaders],
          maxAge: JOB_DATA_CORS.maxAgeSeconds,
        },
      ],
      lifecycleRules: [
        { prefix: JOB_DATA_PREFIX, expiration: Duration.days(props.jobDataExpiryDays) },
        // Uploads interrupted by a crash would otherwise be billed forever.
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      // Job data is transient: `cdk destroy` removes the bucket with its contents.
      autoDeleteObjects: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions::AwsSolutions-S1',
      reason: 'Job data is transient and only the master role touches it; access logs would need a second bucket that outlives the stack',
    });

    const secret = (id: string, description: string) => {
      const created = new secretsmanager.Secret(this, id, {
        description,
        generateSecretString: { passwordLength: 48, excludePunctuation: true },
        removalPolicy: RemovalPolicy.DESTROY,
      });
      Validations.of(created).acknowledge({
        id: 'AwsSolutions::AwsSolutions-SMG4',
        reason: 'Instances read the secret at boot and on each update; rotation is a documented two-step (docs/deploy.md), not a Lambda',
      });
      return created;
    };
    this.clientToken = secret('Token', 'DIPS client token (DIPS_TOKEN): clients send it as a Bearer token to the API');
    this.workerToken = secret('WorkerToken', 'DIPS worker token (DIPS_WORKER_TOKEN): the master and its workers authenticate each other with it');
  }
}
