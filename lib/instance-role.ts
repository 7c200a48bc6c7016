import { Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';

export interface InstanceRoleProps {
  bundle: s3assets.Asset;
  token: secretsmanager.ISecret;
}

/**
 * What every DIPS instance may do: read the bundle object and the token, and be reached through
 * SSM Session Manager (admin access without SSH). Roles add their own statements on top.
 */
export function instanceRole(scope: Construct, props: InstanceRoleProps): iam.Role {
  const role = new iam.Role(scope, 'Role', {
    assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
  });
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ReadBundle',
      actions: ['s3:GetObject'],
      resources: [props.bundle.bucket.arnForObjects(props.bundle.s3ObjectKey)],
    }),
  );
  props.token.grantRead(role);
  Validations.of(role).acknowledge({
    id: 'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
    reason: 'The AWS-maintained minimum for SSM Session Manager, the admin access that replaces SSH',
  });
  return role;
}
