import { Aws, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { BundleRelease } from './bundle-release.js';
import { workerNodeArgs } from '../services/worker/node-args.js';
import { addBootCommands } from './bundle/user-data.js';
import { WORKER_PORT } from './config.js';
import { instanceRole } from './instance-role.js';
import { BOOT_TIMEOUT } from './master.js';
import { encryptedRootVolume } from './root-volume.js';

export interface WorkersProps {
  vpc: ec2.IVpc;
  securityGroup: ec2.ISecurityGroup;
  instanceType: string;
  /** What a worker can hold for images (DIPS_WORKER_MEMORY_BYTES), as the master's planner assumes: the worker lends whole stages its share of it. */
  imageMemoryBytes: number;
  machineImage: ec2.IMachineImage;
  volumeGiB: number;
  minWorkers: number;
  maxWorkers: number;
  /** Fixed so the master's policy and environment can name the group without depending on it. */
  groupName: string;
  masterUrl: string;
  workerToken: secretsmanager.ISecret;
  release: BundleRelease;
  logGroup: logs.ILogGroup;
  /** The log group's name as text (constant: it sits in user data). */
  logGroupName: string;
  bootstrapKmsKeyArn?: string | undefined;
}

/** How long a terminating worker may drain (finish the work it holds) before it goes. */
export const DRAIN_TIMEOUT = Duration.minutes(3);

/**
 * The workers: an Auto Scaling group whose desired capacity belongs to the master's scaler. Their
 * launch template changes only with the image or the instance type; then the group replaces them
 * one at a time, waiting for each new worker's boot signal, and each old one drains first.
 */
export class Workers extends Construct {
  readonly group: autoscaling.AutoScalingGroup;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: WorkersProps) {
    super(scope, id);

    // Workers hold the worker token only: a worker compromised by a hostile image has no client access.
    this.role = instanceRole(this, { release: props.release, secrets: [props.workerToken], logGroup: props.logGroup, bootstrapKmsKeyArn: props.bootstrapKmsKeyArn });
    const userData = ec2.UserData.forLinux();
    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      instanceType: new ec2.InstanceType(props.instanceType),
      machineImage: props.machineImage,
      securityGroup: props.securityGroup,
      role: this.role,
      requireImdsv2: true,
      associatePublicIpAddress: true,
      blockDevices: encryptedRootVolume(props.volumeGiB),
      userData,
    });

    // No desiredCapacity: CloudFormation would reset the scaler's choice on every deploy.
    this.group = new autoscaling.AutoScalingGroup(this, 'Group', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      autoScalingGroupName: props.groupName,
      launchTemplate,
      minCapacity: props.minWorkers,
      maxCapacity: props.maxWorkers,
      // Creation and each rolling replacement wait for the new workers' boot signals (lib/bundle/bootstrap.sh).
      signals: autoscaling.Signals.waitForMinCapacity({ timeout: BOOT_TIMEOUT }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: Math.max(0, props.minWorkers - 1),
        waitOnResourceSignals: true,
        pauseTime: BOOT_TIMEOUT,
      }),
      // The master marks workers that stop heartbeating Unhealthy (SetInstanceHealth); give a new one time to boot.
      healthChecks: autoscaling.HealthChecks.ec2({ gracePeriod: BOOT_TIMEOUT }),
    });
    this.group.addLifecycleHook('Drain', {
      lifecycleHookName: 'dips-drain',
      lifecycleTransition: autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
      heartbeatTimeout: DRAIN_TIMEOUT,
      defaultResult: autoscaling.DefaultResult.CONTINUE,
    });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'FinishDrain',
        actions: ['autoscaling:CompleteLifecycleAction'],
        resources: [`arn:${Aws.PARTITION}:autoscaling:${Aws.REGION}:${Aws.ACCOUNT_ID}:autoScalingGroup:*:autoScalingGroupName/${props.groupName}`],
      }),
    );
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/${props.groupName}]`,
      reason: "The wildcard is the group's generated id; the name pins the statement to the workers' group",
    });

    addBootCommands(userData, {
      role: 'worker',
      signalResource: Stack.of(this).getLogicalId(this.group.node.defaultChild as autoscaling.CfnAutoScalingGroup),
      bundleParameterName: props.release.parameterName,
      secrets: { DIPS_WORKER_TOKEN: props.workerToken.secretArn },
      serviceArgs: `worker --port ${WORKER_PORT} --master ${props.masterUrl}`,
      nodeArgs: workerNodeArgs.join(' '),
      serviceEnv: { DIPS_WORKER_HOST: '0.0.0.0', DIPS_WORKER_MEMORY_BYTES: String(props.imageMemoryBytes), AWS_REGION: Aws.REGION },
      healthUrl: `http://127.0.0.1:${WORKER_PORT}/healthz`,
      logGroupName: props.logGroupName,
      advertisePort: WORKER_PORT,
      workerGroupName: props.groupName,
    });
    Validations.of(this.group).acknowledge({
      id: 'AwsSolutions::AwsSolutions-AS3',
      reason: "Capacity changes come from the master's scaler, which logs each decision and reports it at /v1/cluster",
    });
  }
}
