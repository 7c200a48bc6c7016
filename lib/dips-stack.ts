import { CfnOutput, RemovalPolicy, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { EC2_UNIQUE_IMDSV2_LAUNCH_TEMPLATE_NAME } from 'aws-cdk-lib/cx-api';
import type { Construct } from 'constructs';
import { ApiEndpoint } from './api-endpoint.js';
import { type BundleCommand, BundleRelease } from './bundle-release.js';
import { archOfInstanceType, type BundleArch } from './bundle/target.js';
import type { DipsConfig } from './config.js';
import { InPlaceUpdate, STACK_TAG_KEY } from './in-place-update.js';
import { pinnedUbuntu } from './machine-image.js';
import { Master } from './master.js';
import { Network } from './network.js';
import { Storage } from './storage.js';
import { Workers } from './workers.js';

export interface DipsStackProps extends StackProps {
  config: DipsConfig;
  /** The bundle's version per architecture, from its inputs (bundleInputsHash): known without building it. */
  bundleVersion: (arch: BundleArch) => string;
  /** What CDK's asset publisher runs to build a bundle, on deploy only. */
  bundleCommand: BundleCommand;
}

/** A DIPS cluster: master, auto-scaled workers, job-data bucket, secrets, HTTPS endpoint and logs. */
export class DipsStack extends Stack {
  readonly master: Master;
  readonly workers: Workers;
  readonly api: ApiEndpoint;

  constructor(scope: Construct, id: string, props: DipsStackProps) {
    super(scope, id, props);
    // Without it the master's IMDSv2 launch template gets a fixed name, clashing between two stacks.
    this.node.setContext(EC2_UNIQUE_IMDSV2_LAUNCH_TEMPLATE_NAME, true);
    const { config } = props;
    Tags.of(this).add(STACK_TAG_KEY, this.stackName);

    const network = new Network(this, 'Network');
    const storage = new Storage(this, 'Storage', { jobDataExpiryDays: config.jobDataExpiryDays });
    const logGroupName = `/dips/${this.stackName}`;
    const logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName,
      retention: retentionDays(config.logRetentionDays),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const masterArch = archOfInstanceType(config.masterInstanceType);
    const workerArch = archOfInstanceType(config.workerInstanceType);
    const releases = new Map<BundleArch, BundleRelease>();
    const releaseFor = (arch: BundleArch) => {
      if (!releases.has(arch)) {
        releases.set(arch, new BundleRelease(this, `Bundle-${arch}`, { arch, version: props.bundleVersion(arch), command: props.bundleCommand }));
      }
      return releases.get(arch)!;
    };
    const workerGroupName = `${this.stackName}-workers`;

    this.master = new Master(this, 'Master', {
      vpc: network.vpc,
      securityGroup: network.masterSecurityGroup,
      instanceType: config.masterInstanceType,
      machineImage: pinnedUbuntu(this, masterArch, config.masterAmi, 'masterAmi'),
      rootVolumeGiB: config.masterVolumeGiB,
      dataVolumeGiB: config.masterDataVolumeGiB,
      maxImagePixels: config.maxImagePixels,
      workerImageMemoryBytes: config.workerImageMemoryBytes,
      bucket: storage.bucket,
      clientToken: storage.clientToken,
      workerToken: storage.workerToken,
      release: releaseFor(masterArch),
      logGroup,
      logGroupName,
      bootstrapKmsKeyArn: config.bootstrapKmsKeyArn,
      workerGroupName,
      sources: config.sources,
      destinations: config.destinations,
    });
    this.workers = new Workers(this, 'Workers', {
      vpc: network.vpc,
      securityGroup: network.workerSecurityGroup,
      instanceType: config.workerInstanceType,
      imageMemoryBytes: config.workerImageMemoryBytes,
      machineImage: pinnedUbuntu(this, workerArch, config.workerAmi, 'workerAmi'),
      volumeGiB: config.workerVolumeGiB,
      minWorkers: config.minWorkers,
      maxWorkers: config.maxWorkers,
      groupName: workerGroupName,
      masterUrl: this.master.privateUrl,
      workerToken: storage.workerToken,
      release: releaseFor(workerArch),
      logGroup,
      logGroupName,
      bootstrapKmsKeyArn: config.bootstrapKmsKeyArn,
    });
    new InPlaceUpdate(this, 'Update', { releases: [...releases.values()], stackTag: this.stackName, after: [this.master.instance, this.workers.group] });
    this.api = new ApiEndpoint(this, 'Api', { master: this.master.instance, allowedCidr: config.allowedCidr });

    new CfnOutput(this, 'ApiUrl', { description: 'The master API and console over HTTPS (callable from allowedCidr only)', value: this.api.url });
    new CfnOutput(this, 'TokenSecretName', { description: 'Secrets Manager secret holding the client Bearer token (DIPS_TOKEN)', value: storage.clientToken.secretName });
    new CfnOutput(this, 'WorkerTokenSecretName', { description: 'Secrets Manager secret holding the master<->worker token (DIPS_WORKER_TOKEN)', value: storage.workerToken.secretName });
    new CfnOutput(this, 'WorkerGroupName', { description: 'Auto Scaling group of the workers', value: this.workers.group.autoScalingGroupName });
    new CfnOutput(this, 'BucketName', { description: 'S3 bucket of job data', value: storage.bucket.bucketName });
    new CfnOutput(this, 'LogGroupName', { description: 'CloudWatch Logs group: <instance id>/boot and /master or /worker streams', value: logGroup.logGroupName });
  }
}

/** CloudWatch Logs accepts a fixed set of retention periods: the nearest one at or above `days`. */
function retentionDays(days: number): logs.RetentionDays {
  const allowed = Object.values(logs.RetentionDays).filter((value): value is number => typeof value === 'number' && value > 0).sort((a, b) => a - b);
  return (allowed.find((value) => value >= days) ?? allowed.at(-1)!) as logs.RetentionDays;
}
