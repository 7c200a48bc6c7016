import { Aws, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { bootUserData } from './bundle/user-data.js';
import { UBUNTU_AMI_PARAMETER, WORKER_PORT } from './config.js';
import { instanceRole } from './instance-role.js';
import { encryptedRootVolume } from './root-volume.js';

export interface WorkersProps {
  vpc: ec2.IVpc;
  securityGroup: ec2.ISecurityGroup;
  instanceType: string;
  volumeGiB: number;
  minWorkers: number;
  maxWorkers: number;
  /** Fixed so the master's policy and environment can name the group without depending on it. */
  groupName: string;
  masterUrl: string;
  token: secretsmanager.ISecret;
  bundle: s3assets.Asset;
  bundleSha256: string;
}

/** The workers: an Auto Scaling group whose desired capacity belongs to the master's scaler. */
export class Workers extends Construct {
  readonly group: autoscaling.AutoScalingGroup;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: WorkersProps) {
    super(scope, id);

    this.role = instanceRole(this, { bundle: props.bundle, token: props.token });
    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      instanceType: new ec2.InstanceType(props.instanceType),
      machineImage: ec2.MachineImage.fromSsmParameter(UBUNTU_AMI_PARAMETER),
      securityGroup: props.securityGroup,
      role: this.role,
      requireImdsv2: true,
      associatePublicIpAddress: true,
      blockDevices: encryptedRootVolume(props.volumeGiB),
      userData: bootUserData({
        role: 'worker',
        bundle: props.bundle,
        bundleSha256: props.bundleSha256,
        token: props.token,
        serviceArgs: `worker --port ${WORKER_PORT} --master ${props.masterUrl}`,
        serviceEnv: { DIPS_WORKER_HOST: '0.0.0.0', AWS_REGION: Aws.REGION },
        advertisePort: WORKER_PORT,
      }),
    });

    // No desiredCapacity: CloudFormation would reset the scaler's choice on every deploy.
    this.group = new autoscaling.AutoScalingGroup(this, 'Group', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      autoScalingGroupName: props.groupName,
      launchTemplate,
      minCapacity: props.minWorkers,
      maxCapacity: props.maxWorkers,
      // A new bundle means a new launch template: replace running workers one at a time.
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate(),
    });
    Validations.of(this.group).acknowledge({
      id: 'AwsSolutions::AwsSolutions-AS3',
      reason: "Capacity changes come from the master's scaler, which logs each decision and reports it at /v1/cluster",
    });
  }
}
