import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { EC2_UNIQUE_IMDSV2_LAUNCH_TEMPLATE_NAME } from 'aws-cdk-lib/cx-api';
import type { Construct } from 'constructs';
import type { Bundle } from './bundle/build-bundle.js';
import { API_PORT, type DipsConfig } from './config.js';
import { Master } from './master.js';
import { Network } from './network.js';
import { Storage } from './storage.js';
import { Workers } from './workers.js';

export interface DipsStackProps extends StackProps {
  config: DipsConfig;
  /** The services' archive (see lib/bundle/build-bundle.ts). */
  bundle: Bundle;
}

/** A DIPS cluster: master, auto-scaled workers, job-data bucket and shared token. */
export class DipsStack extends Stack {
  constructor(scope: Construct, id: string, props: DipsStackProps) {
    super(scope, id, props);
    // Without it the master's IMDSv2 launch template gets a fixed name, clashing between two stacks.
    this.node.setContext(EC2_UNIQUE_IMDSV2_LAUNCH_TEMPLATE_NAME, true);
    const { config } = props;

    const network = new Network(this, 'Network', { allowedCidr: config.allowedCidr });
    const storage = new Storage(this, 'Storage', { jobDataExpiryDays: config.jobDataExpiryDays });
    const bundle = new s3assets.Asset(this, 'Bundle', { path: props.bundle.archivePath });
    const workerGroupName = `${this.stackName}-workers`;

    const master = new Master(this, 'Master', {
      vpc: network.vpc,
      securityGroup: network.masterSecurityGroup,
      instanceType: config.masterInstanceType,
      volumeGiB: config.masterVolumeGiB,
      bucket: storage.bucket,
      token: storage.token,
      bundle,
      bundleSha256: props.bundle.sha256,
      workerGroupName,
    });
    const workers = new Workers(this, 'Workers', {
      vpc: network.vpc,
      securityGroup: network.workerSecurityGroup,
      instanceType: config.workerInstanceType,
      volumeGiB: config.workerVolumeGiB,
      minWorkers: config.minWorkers,
      maxWorkers: config.maxWorkers,
      groupName: workerGroupName,
      masterUrl: master.privateUrl,
      token: storage.token,
      bundle,
      bundleSha256: props.bundle.sha256,
    });

    new CfnOutput(this, 'ApiUrl', {
      description: 'The master API (reachable from allowedCidr only)',
      value: `http://${master.publicIp}:${API_PORT}`,
    });
    new CfnOutput(this, 'TokenSecretName', {
      description: 'Secrets Manager secret holding the Bearer token',
      value: storage.token.secretName,
    });
    new CfnOutput(this, 'WorkerGroupName', { description: 'Auto Scaling group of the workers', value: workers.group.autoScalingGroupName });
    new CfnOutput(this, 'BucketName', { description: 'S3 bucket of job data', value: storage.bucket.bucketName });
  }
}
