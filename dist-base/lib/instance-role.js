import { Aws, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
/**
 * What every DIPS instance may do: read its bundle (object and version parameter) and its secrets,
 * signal its own stack, write its logs, and be reached and updated through SSM (Session Manager and
 * the update association). The SSM part is spelled out instead of AmazonSSMManagedInstanceCore,
 * which also grants ssm:GetParameter* on every parameter of the account.
 */
export function instanceRole(scope, props) {
    const role = new iam.Role(scope, 'Role', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    const statement = (sid, actions, resources, conditions) => role.addToPrincipalPolicy(new iam.PolicyStatement({ sid, actions, resources, ...(conditions ? { conditions } : {}) }));
    statement('ReadBundle', ['s3:GetObject'], [props.release.objectArn]);
    statement('ReadBundleVersion', ['ssm:GetParameter'], [props.release.parameter.parameterArn]);
    if (props.bootstrapKmsKeyArn) {
        statement('DecryptBundle', ['kms:Decrypt'], [props.bootstrapKmsKeyArn], { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } });
    }
    for (const secret of props.secrets)
        secret.grantRead(role);
    statement('SignalBoot', ['cloudformation:SignalResource'], [`arn:${Aws.PARTITION}:cloudformation:${Aws.REGION}:${Aws.ACCOUNT_ID}:stack/${Aws.STACK_NAME}/*`]);
    statement('WriteLogs', ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'], [props.logGroup.logGroupArn]);
    statement('SsmAgent', ['ssm:UpdateInstanceInformation', 'ssm:ListInstanceAssociations', 'ssm:UpdateInstanceAssociationStatus', 'ssm:PutInventory', 'ssm:PutComplianceItems'], [
        `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:instance/*`,
    ]);
    statement('SsmAssociations', ['ssm:ListAssociations', 'ssm:DescribeAssociation', 'ssm:GetDocument', 'ssm:DescribeDocument'], ['*']);
    statement('SessionManager', [
        'ssmmessages:CreateControlChannel', 'ssmmessages:CreateDataChannel', 'ssmmessages:OpenControlChannel', 'ssmmessages:OpenDataChannel',
        'ec2messages:AcknowledgeMessage', 'ec2messages:DeleteMessage', 'ec2messages:FailMessage', 'ec2messages:GetEndpoint', 'ec2messages:GetMessages', 'ec2messages:SendReply',
    ], ['*']);
    Validations.of(role).acknowledge({
        id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
        reason: 'ssmmessages, ec2messages and the SSM agent association reads support no resource-level permissions (the agent calls them per instance)',
    }, {
        id: 'AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
        reason: 'The SSM agent reports for the instance it runs on; instance ids are not known before launch',
    }, {
        id: 'AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:stack/<AWS::StackName>/*]',
        reason: "The wildcard is the stack's generated id; the name pins it to this stack",
    });
    return role;
}
//# sourceMappingURL=instance-role.js.map