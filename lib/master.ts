import { Aws, type CfnElement, Duration, RemovalPolicy, Size, Stack, Tags, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { BundleRelease } from './bundle-release.js';
import { addBootCommands } from './bundle/user-data.js';
import { STACK_TAG_KEY } from './in-place-update.js';
import { grantBatchDataAccess } from './batch-data-access.js';
import { API_PORT, JOB_DATA_PREFIX, MASTER_DATA_DIR, type S3Root } from './config.js';
import { instanceRole } from './instance-role.js';
import { encryptedRootVolume } from './root-volume.js';

export interface MasterProps {
  vpc: ec2.IVpc;
  securityGroup: ec2.ISecurityGroup;
  instanceType: string;
  machineImage: ec2.IMachineImage;
  rootVolumeGiB: number;
  dataVolumeGiB: number;
  maxImagePixels: number;
  /** What the planner may fill of one worker's memory (DIPS_WORKER_MEMORY_BYTES), from the worker instance type. */
  workerImageMemoryBytes: number;
  bucket: s3.IBucket;
  clientToken: secretsmanager.ISecret;
  workerToken: secretsmanager.ISecret;
  release: BundleRelease;
  logGroup: logs.ILogGroup;
  /** The log group's name as text (constant: it sits in user data). */
  logGroupName: string;
  bootstrapKmsKeyArn?: string | undefined;
  /** The workers' Auto Scaling group, by name: the master's scaler sets its desired capacity. */
  workerGroupName: string;
  /** Extra buckets batch jobs read from and write to (context "sources", "destinations"). */
  sources: S3Root[];
  destinations: S3Root[];
}

/** The tag naming an instance's role (master or worker); IAM conditions on it. */
export const ROLE_TAG_KEY = 'dips:role';

/** How long CloudFormation waits for a new instance's boot to signal success. */
export const BOOT_TIMEOUT = Duration.minutes(20);

/**
 * The master: one EC2 instance in a private subnet, recovered onto new hardware when its host fails.
 * Its user data never changes with code (updates are in place, lib/in-place-update.ts), its image is
 * pinned, and its data directory lives on an EBS volume of its own that outlives the instance.
 */
export class Master extends Construct {
  readonly instance: ec2.Instance;
  readonly role: iam.Role;
  readonly dataVolume: ec2.Volume;

  constructor(scope: Construct, id: string, props: MasterProps) {
    super(scope, id);

    this.role = instanceRole(this, {
      release: props.release,
      secrets: [props.clientToken, props.workerToken],
      logGroup: props.logGroup,
      bootstrapKmsKeyArn: props.bootstrapKmsKeyArn,
    });
    const workerGroupArn = `arn:${Aws.PARTITION}:autoscaling:${Aws.REGION}:${Aws.ACCOUNT_ID}:autoScalingGroup:*:autoScalingGroupName/${props.workerGroupName}`;
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ScaleWorkerGroup',
        // SetInstanceHealth: a worker that stopped heartbeating is marked unhealthy, and the group replaces it.
        actions: ['autoscaling:SetDesiredCapacity', 'autoscaling:SetInstanceProtection', 'autoscaling:SetInstanceHealth'],
        resources: [workerGroupArn],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DescribeWorkers',
        // These describe calls support no resource-level permissions.
        actions: ['autoscaling:DescribeAutoScalingGroups', 'ec2:DescribeInstances'],
        resources: ['*'],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'JobData',
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        resources: [props.bucket.arnForObjects(`${JOB_DATA_PREFIX}*`)],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListJobData',
        actions: ['s3:ListBucket'],
        resources: [props.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': `${JOB_DATA_PREFIX}*` } },
      }),
    );
    const batchData = grantBatchDataAccess(this.role, { sources: props.sources, destinations: props.destinations });
    const bucketLogicalId = Stack.of(this).resolve((props.bucket.node.defaultChild as CfnElement).logicalId) as string;
    Validations.of(this.role).acknowledge(
      {
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/${props.workerGroupName}]`,
        reason: "The wildcard is the group's generated id; the name pins the statement to the workers' group",
      },
      {
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${JOB_DATA_PREFIX}*]`,
        reason: 'The master stores and deletes job data under its prefix, object keys are generated per job',
      },
    );

    // One subnet, so the instance and its data volume share an availability zone.
    const subnet = props.vpc.privateSubnets[0]!;
    this.dataVolume = new ec2.Volume(this, 'Data', {
      availabilityZone: subnet.availabilityZone,
      size: Size.gibibytes(props.dataVolumeGiB),
      volumeType: ec2.EbsDeviceVolumeType.GP3,
      encrypted: true,
      // The job store outlives the stack too: `cdk destroy` leaves a snapshot of it.
      removalPolicy: RemovalPolicy.SNAPSHOT,
    });

    this.instance = new ec2.Instance(this, 'Instance', {
      vpc: props.vpc,
      vpcSubnets: { subnets: [subnet] },
      securityGroup: props.securityGroup,
      instanceType: new ec2.InstanceType(props.instanceType),
      machineImage: props.machineImage,
      role: this.role,
      requireImdsv2: true,
      // The user data is the same for every code version: new code arrives in place, not by replacement.
      userDataCausesReplacement: false,
      blockDevices: encryptedRootVolume(props.rootVolumeGiB),
    });
    const cfnInstance = this.instance.node.defaultChild as ec2.CfnInstance;
    // The volume is attached by the boot script, not by CloudFormation: a replacement master takes it
    // over from the one it replaces (lib/bundle/bootstrap.sh), which CloudFormation could not do.
    Tags.of(this.instance).add(ROLE_TAG_KEY, 'master');
    this.grantDataVolumeTakeover();
    cfnInstance.cfnOptions.creationPolicy = { resourceSignal: { count: 1, timeout: `PT${BOOT_TIMEOUT.toMinutes()}M` } };
    addBootCommands(this.instance.userData, {
        role: 'master',
        signalResource: Stack.of(this).getLogicalId(cfnInstance),
        bundleParameterName: props.release.parameterName,
        secrets: { DIPS_TOKEN: props.clientToken.secretArn, DIPS_WORKER_TOKEN: props.workerToken.secretArn },
        serviceArgs: `master --port ${API_PORT} --data-dir ${MASTER_DATA_DIR}`,
        serviceEnv: {
          // The services listen on loopback unless told otherwise; the security group does the filtering.
          DIPS_HOST: '0.0.0.0',
          DIPS_STORAGE: 's3',
          DIPS_S3_BUCKET: props.bucket.bucketName,
          DIPS_S3_PREFIX: JOB_DATA_PREFIX,
          DIPS_ASG_NAME: props.workerGroupName,
          DIPS_MAX_PIXELS: String(props.maxImagePixels),
          DIPS_WORKER_MEMORY_BYTES: String(props.workerImageMemoryBytes),
          ...batchData,
          AWS_REGION: Aws.REGION,
        },
        healthUrl: `http://127.0.0.1:${API_PORT}/healthz`,
        logGroupName: props.logGroupName,
        dataVolumeId: this.dataVolume.volumeId,
    });

    // A failed host (not a failed OS) is fixed by moving the instance: same id, address and volumes.
    new cloudwatch.Alarm(this, 'RecoverOnHostFailure', {
      alarmDescription: 'Recovers the DIPS master onto healthy hardware when its host fails',
      metric: new cloudwatch.Metric({
        namespace: 'AWS/EC2',
        metricName: 'StatusCheckFailed_System',
        dimensionsMap: { InstanceId: this.instance.instanceId },
        statistic: cloudwatch.Stats.MAXIMUM,
        period: Duration.minutes(1),
      }),
      threshold: 1,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.MISSING,
    }).addAlarmAction(new cloudwatchActions.Ec2Action(cloudwatchActions.Ec2InstanceAction.RECOVER));
    Validations.of(this.instance).acknowledge(
      {
        id: 'AwsSolutions::AwsSolutions-EC28',
        reason: 'Basic 5-minute metrics suffice; the recovery alarm uses the status checks, which are per minute anyway',
      },
      {
        id: 'AwsSolutions::AwsSolutions-EC29',
        reason: 'cdk destroy must be able to remove the master; its data volume is snapshotted, host failures are handled by the recovery alarm',
      },
    );
  }

  /**
   * What the boot script needs to move the data volume from the master it replaces: attach and
   * detach this volume only, and only to or from instances tagged as this stack's master, which it
   * may also stop (the old one, so SQLite closes cleanly) and start (given back when the boot fails).
   */
  private grantDataVolumeTakeover(): void {
    const stack = Stack.of(this);
    const ec2Arn = (resource: string) => `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:${resource}`;
    const thisStacksMaster = { StringEquals: { [`aws:ResourceTag/${STACK_TAG_KEY}`]: stack.stackName, [`aws:ResourceTag/${ROLE_TAG_KEY}`]: 'master' } };
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'MoveDataVolume', actions: ['ec2:AttachVolume', 'ec2:DetachVolume'], resources: [ec2Arn(`volume/${this.dataVolume.volumeId}`)] }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'MoveDataVolumeBetweenMasters',
        actions: ['ec2:AttachVolume', 'ec2:DetachVolume', 'ec2:StopInstances', 'ec2:StartInstances'],
        resources: [ec2Arn('instance/*')],
        conditions: thisStacksMaster,
      }),
    );
    // DescribeVolumes supports no resource-level permissions (DescribeInstances is granted above).
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'DescribeDataVolume', actions: ['ec2:DescribeVolumes'], resources: ['*'] }));
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
      reason: "Instance ids are not known before launch; the condition pins the statement to instances tagged as this stack's master",
    });
  }

  /** The API's address inside the VPC, as the workers reach it. */
  get privateUrl(): string {
    return `http://${this.instance.instancePrivateIp}:${API_PORT}`;
  }
}
