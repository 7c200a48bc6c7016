import { Aws, type CfnElement, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { bootUserData } from './bundle/user-data.js';
import { API_PORT, JOB_DATA_PREFIX, MASTER_DATA_DIR, UBUNTU_AMI_PARAMETER } from './config.js';
import { instanceRole } from './instance-role.js';
import { encryptedRootVolume } from './root-volume.js';

export interface MasterProps {
  vpc: ec2.IVpc;
  securityGroup: ec2.ISecurityGroup;
  instanceType: string;
  volumeGiB: number;
  bucket: s3.IBucket;
  token: secretsmanager.ISecret;
  bundle: s3assets.Asset;
  bundleSha256: string;
  /** The workers' Auto Scaling group, by name: the master's scaler sets its desired capacity. */
  workerGroupName: string;
}

/** The master: one EC2 instance, recovered onto new hardware when its host fails. */
export class Master extends Construct {
  readonly instance: ec2.Instance;
  readonly role: iam.Role;
  /** The API's public address: an Elastic IP, so it survives the instance's replacement on updates. */
  readonly publicIp: string;

  constructor(scope: Construct, id: string, props: MasterProps) {
    super(scope, id);

    this.role = instanceRole(this, { bundle: props.bundle, token: props.token });
    const workerGroupArn = `arn:${Aws.PARTITION}:autoscaling:${Aws.REGION}:${Aws.ACCOUNT_ID}:autoScalingGroup:*:autoScalingGroupName/${props.workerGroupName}`;
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ScaleWorkerGroup',
        actions: ['autoscaling:SetDesiredCapacity', 'autoscaling:SetInstanceProtection'],
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
    const bucketLogicalId = Stack.of(this).resolve((props.bucket.node.defaultChild as CfnElement).logicalId) as string;
    Validations.of(this.role).acknowledge(
      {
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/${props.workerGroupName}]`,
        reason: "The wildcard is the group's generated id; the name pins the statement to the workers' group",
      },
      {
        id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
        reason: 'autoscaling:DescribeAutoScalingGroups and ec2:DescribeInstances support no resource-level permissions',
      },
      {
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${JOB_DATA_PREFIX}*]`,
        reason: 'The master stores and deletes job data under its prefix, object keys are generated per job',
      },
    );

    this.instance = new ec2.Instance(this, 'Instance', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroup: props.securityGroup,
      instanceType: new ec2.InstanceType(props.instanceType),
      machineImage: ec2.MachineImage.fromSsmParameter(UBUNTU_AMI_PARAMETER),
      role: this.role,
      requireImdsv2: true,
      // User data runs on first boot only: a new bundle needs a new instance to be installed.
      userDataCausesReplacement: true,
      blockDevices: encryptedRootVolume(props.volumeGiB),
      userData: bootUserData({
        role: 'master',
        bundle: props.bundle,
        bundleSha256: props.bundleSha256,
        token: props.token,
        serviceArgs: `master --port ${API_PORT} --data-dir ${MASTER_DATA_DIR}`,
        serviceEnv: {
          // The services listen on loopback unless told otherwise; the security group does the filtering.
          DIPS_HOST: '0.0.0.0',
          DIPS_STORAGE: 's3',
          DIPS_S3_BUCKET: props.bucket.bucketName,
          DIPS_S3_PREFIX: JOB_DATA_PREFIX,
          DIPS_ASG_NAME: props.workerGroupName,
          AWS_REGION: Aws.REGION,
        },
      }),
    });

    const address = new ec2.CfnEIP(this, 'PublicAddress', { domain: 'vpc' });
    new ec2.CfnEIPAssociation(this, 'PublicAddressAssociation', { allocationId: address.attrAllocationId, instanceId: this.instance.instanceId });
    this.publicIp = address.attrPublicIp;

    // A failed host (not a failed OS) is fixed by moving the instance: same id, address and volume.
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
        reason: 'cdk destroy must be able to remove the master; host failures are handled by the recovery alarm',
      },
    );
  }

  /** The API's address inside the VPC, as the workers reach it. */
  get privateUrl(): string {
    return `http://${this.instance.instancePrivateIp}:${API_PORT}`;
  }
}
