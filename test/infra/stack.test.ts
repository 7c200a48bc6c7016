import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../lib/config.js';
import { DipsStack } from '../../lib/dips-stack.js';

const ALLOWED_CIDR = '203.0.113.0/24';
const CONTEXT = { allowedCidr: ALLOWED_CIDR, minWorkers: '2', maxWorkers: '5', masterInstanceType: 't3.small' };

type Json = Record<string, any>;
let workDir: string;
let bundle: { archivePath: string; sha256: string };
let template: Template;
let resources: Record<string, Json>;

function synthesize(context: Record<string, string>, withNag = false): { app: App; stack: DipsStack } {
  const app = new App({ context, outdir: mkdtempSync(path.join(workDir, 'cdk.out-')) });
  const stack = new DipsStack(app, 'DipsTest', { config: readConfig(app.node), bundle });
  if (withNag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}

function ofType(type: string): [string, Json][] {
  return Object.entries(resources).filter(([, resource]) => resource.Type === type);
}

function only(type: string): [string, Json] {
  const found = ofType(type);
  expect(found, type).toHaveLength(1);
  return found[0]!;
}

/** User data as text, with references shown as ${Ref:Id} and ${GetAtt:Id.Attr}. */
function userDataText(userData: Json): string {
  const render = (value: any): string => {
    if (typeof value === 'string') return value;
    if (value['Fn::Base64']) return render(value['Fn::Base64']);
    if (value['Fn::Join']) return (value['Fn::Join'][1] as any[]).map(render).join(value['Fn::Join'][0]);
    if (value.Ref) return `\${Ref:${value.Ref}}`;
    if (value['Fn::GetAtt']) return `\${GetAtt:${value['Fn::GetAtt'].join('.')}}`;
    return JSON.stringify(value);
  };
  return render(userData);
}

/** Every ingress rule of a security group, inline or as separate resources. */
function ingressRules(groupLogicalId: string): Json[] {
  const inline = (resources[groupLogicalId]!.Properties.SecurityGroupIngress ?? []) as Json[];
  const separate = ofType('AWS::EC2::SecurityGroupIngress')
    .map(([, rule]) => rule.Properties as Json)
    .filter((rule) => rule.GroupId?.['Fn::GetAtt']?.[0] === groupLogicalId);
  return [...inline, ...separate];
}

function policyStatements(roleLogicalId: string): Json[] {
  return ofType('AWS::IAM::Policy')
    .filter(([, policy]) => (policy.Properties.Roles as Json[]).some((role) => role.Ref === roleLogicalId))
    .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Json[]);
}

const securityGroupId = (description: string) =>
  ofType('AWS::EC2::SecurityGroup').find(([, group]) => String(group.Properties.GroupDescription).startsWith(description))![0];
const roleOf = (pathPart: string) => ofType('AWS::IAM::Role').find(([id]) => id.startsWith(pathPart))![0];

beforeAll(() => {
  workDir = mkdtempSync(path.join(os.tmpdir(), 'dips-infra-'));
  // The stack only uploads the archive: any bytes stand in for the real bundle here.
  const archivePath = path.join(workDir, 'bundle.tar.gz');
  writeFileSync(archivePath, 'stand-in bundle');
  bundle = { archivePath, sha256: createHash('sha256').update('stand-in bundle').digest('hex') };
  template = Template.fromStack(synthesize(CONTEXT).stack);
  resources = template.toJSON().Resources;
});

afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('context', () => {
  it('refuses to synthesize without allowedCidr, naming it', () => {
    expect(() => synthesize({})).toThrow(/context "allowedCidr" is required/);
  });

  it('refuses 0.0.0.0/0 and malformed CIDRs', () => {
    expect(() => synthesize({ allowedCidr: '0.0.0.0/0' })).toThrow(/must not be 0\.0\.0\.0\/0/);
    expect(() => synthesize({ allowedCidr: '10.0.0.300/8' })).toThrow(/must be an IPv4 CIDR/);
  });

  it('refuses a maximum below the minimum', () => {
    expect(() => synthesize({ allowedCidr: ALLOWED_CIDR, minWorkers: '3', maxWorkers: '2' })).toThrow(/maxWorkers/);
  });
});

describe('network', () => {
  it('spans two availability zones with flow logs and an S3 gateway endpoint', () => {
    const zones = new Set(ofType('AWS::EC2::Subnet').map(([, subnet]) => JSON.stringify(subnet.Properties.AvailabilityZone)));
    expect(zones.size).toBe(2);
    template.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL' });
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith(['.s3'])]) }),
    });
    expect(ofType('AWS::EC2::NatGateway')).toHaveLength(0);
  });

  it('lets only the master reach the workers, on port 12345 only', () => {
    const workerGroup = securityGroupId('DIPS workers');
    const masterGroup = securityGroupId('DIPS master');
    expect(ingressRules(workerGroup)).toEqual([
      expect.objectContaining({ IpProtocol: 'tcp', FromPort: 12345, ToPort: 12345, SourceSecurityGroupId: { 'Fn::GetAtt': [masterGroup, 'GroupId'] } }),
    ]);
  });

  it('opens the API port to the allowed CIDR and the workers only, and no SSH anywhere', () => {
    const workerGroup = securityGroupId('DIPS workers');
    const masterGroup = securityGroupId('DIPS master');
    const rules = ingressRules(masterGroup);
    expect(rules).toHaveLength(2);
    expect(rules).toContainEqual(expect.objectContaining({ FromPort: 8080, ToPort: 8080, CidrIp: ALLOWED_CIDR }));
    expect(rules).toContainEqual(
      expect.objectContaining({ FromPort: 8080, ToPort: 8080, SourceSecurityGroupId: { 'Fn::GetAtt': [workerGroup, 'GroupId'] } }),
    );
    const allRules = [...ingressRules(masterGroup), ...ingressRules(workerGroup)];
    expect(allRules.filter((rule) => rule.FromPort <= 22 && rule.ToPort >= 22)).toEqual([]);
  });
});

describe('master', () => {
  it("runs Canonical's Ubuntu from the public SSM parameter, with the instance type from context", () => {
    const [, instance] = only('AWS::EC2::Instance');
    expect(instance.Properties.InstanceType).toBe('t3.small');
    const parameter = template.toJSON().Parameters[instance.Properties.ImageId.Ref];
    expect(parameter.Default).toBe('/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id');
  });

  it('requires IMDSv2 and encrypts its volume', () => {
    const [, instance] = only('AWS::EC2::Instance');
    const launchTemplate = ofType('AWS::EC2::LaunchTemplate').find(
      ([, candidate]) => JSON.stringify(candidate.Properties.LaunchTemplateName) === JSON.stringify(instance.Properties.LaunchTemplate.LaunchTemplateName),
    )![1];
    expect(launchTemplate.Properties.LaunchTemplateData.MetadataOptions.HttpTokens).toBe('required');
    // Named after the stack, so two DIPS stacks in one region do not clash.
    expect(launchTemplate.Properties.LaunchTemplateName).toMatch(/^DipsTest/);
    expect(instance.Properties.BlockDeviceMappings).toEqual([
      expect.objectContaining({ DeviceName: '/dev/sda1', Ebs: expect.objectContaining({ Encrypted: true }) }),
    ]);
  });

  it('is recovered onto new hardware when StatusCheckFailed_System fires', () => {
    const [instanceId] = only('AWS::EC2::Instance');
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/EC2',
      MetricName: 'StatusCheckFailed_System',
      Dimensions: [{ Name: 'InstanceId', Value: { Ref: instanceId } }],
      AlarmActions: [{ 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp(':automate:'), ':ec2:recover'])] }],
    });
  });

  it('starts `dips master` with S3 storage, the group name and the region, and no token in clear', () => {
    const [, instance] = only('AWS::EC2::Instance');
    const [bucketId] = only('AWS::S3::Bucket');
    const [secretId] = only('AWS::SecretsManager::Secret');
    const text = userDataText(instance.Properties.UserData);
    expect(text).toContain("DIPS_SERVICE_ARGS='master --port 8080 --data-dir /var/lib/dips'");
    expect(text).toContain('DIPS_HOST=0.0.0.0');
    expect(text).toContain('DIPS_STORAGE=s3');
    expect(text).toContain(`DIPS_S3_BUCKET=\${Ref:${bucketId}}`);
    expect(text).toContain('DIPS_S3_PREFIX=jobs/');
    expect(text).toContain('DIPS_ASG_NAME=DipsTest-workers');
    expect(text).toContain('AWS_REGION=${Ref:AWS::Region}');
    expect(text).toContain(`DIPS_TOKEN_SECRET_ID='\${Ref:${secretId}}'`);
    expect(text).toContain(`DIPS_ASSET_SHA256=${bundle.sha256}`);
    expect(JSON.stringify(template.toJSON())).not.toContain('resolve:secretsmanager');
  });
});

describe('workers', () => {
  it('form an Auto Scaling group sized from context, without DesiredCapacity', () => {
    const [, group] = only('AWS::AutoScaling::AutoScalingGroup');
    expect(group.Properties.MinSize).toBe('2');
    expect(group.Properties.MaxSize).toBe('5');
    expect(group.Properties.AutoScalingGroupName).toBe('DipsTest-workers');
    expect(group.Properties).not.toHaveProperty('DesiredCapacity');
  });

  it('have no scaling policy or scheduled action: the scaler of the master alone sets the desired capacity', () => {
    const competing = Object.values(resources).filter((resource) =>
      ['AWS::AutoScaling::ScalingPolicy', 'AWS::AutoScaling::ScheduledAction', 'AWS::ApplicationAutoScaling::ScalingPolicy'].includes(resource.Type),
    );
    expect(competing).toEqual([]);
  });

  it('launch Ubuntu micro instances with IMDSv2 and encrypted volumes', () => {
    const [, group] = only('AWS::AutoScaling::AutoScalingGroup');
    const templateId = group.Properties.LaunchTemplate.LaunchTemplateId.Ref as string;
    const data = resources[templateId]!.Properties.LaunchTemplateData;
    expect(data.InstanceType).toBe('t3.micro');
    expect(data.MetadataOptions.HttpTokens).toBe('required');
    expect(data.BlockDeviceMappings).toEqual([expect.objectContaining({ Ebs: expect.objectContaining({ Encrypted: true }) })]);
    expect(data.ImageId.Ref).toMatch(/^SsmParameterValueawsservicecanonicalubuntu/);
  });

  it("start `dips worker` pointed at the master's private address", () => {
    const [, group] = only('AWS::AutoScaling::AutoScalingGroup');
    const [instanceId] = only('AWS::EC2::Instance');
    const data = resources[group.Properties.LaunchTemplate.LaunchTemplateId.Ref]!.Properties.LaunchTemplateData;
    const text = userDataText(data.UserData);
    expect(text).toContain(`DIPS_SERVICE_ARGS='worker --port 12345 --master http://\${GetAtt:${instanceId}.PrivateIp}:8080'`);
    expect(text).toContain('DIPS_ADVERTISE_PORT=12345');
    expect(text).toContain('DIPS_WORKER_HOST=0.0.0.0');
    // The worker unit's environment sizes libuv's pool for sharp (2 x vCPUs, at least 4), written at boot.
    expect(text).toContain('DIPS_ROLE=worker');
    expect(text).toContain('if [ "$DIPS_ROLE" = worker ]; then echo "UV_THREADPOOL_SIZE=$(( $(nproc) * 2 > 4 ? $(nproc) * 2 : 4 ))"; fi');
  });

  it('fit in EC2 user data (16 KB) as valid bash, for both roles', () => {
    const [, group] = only('AWS::AutoScaling::AutoScalingGroup');
    const [, instance] = only('AWS::EC2::Instance');
    const scripts = [instance.Properties.UserData, resources[group.Properties.LaunchTemplate.LaunchTemplateId.Ref]!.Properties.LaunchTemplateData.UserData];
    for (const script of scripts.map(userDataText)) {
      expect(script.startsWith('#!/bin/bash\n')).toBe(true);
      expect(Buffer.byteLength(script)).toBeLessThan(16 * 1024);
      const check = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
      expect(check.status, check.stderr).toBe(0);
    }
  });
});

describe('data and secrets', () => {
  it('keeps job data in an encrypted, private, expiring bucket that cdk destroy empties and removes', () => {
    const [bucketId, bucket] = only('AWS::S3::Bucket');
    expect(bucket.DeletionPolicy).toBe('Delete');
    expect(bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.Properties.LifecycleConfiguration.Rules).toContainEqual(
      expect.objectContaining({ Prefix: 'jobs/', ExpirationInDays: 7, Status: 'Enabled' }),
    );
    template.hasResourceProperties('Custom::S3AutoDeleteObjects', { BucketName: { Ref: bucketId } });
  });

  it('refuses requests without TLS in the bucket policy', () => {
    const [bucketId] = only('AWS::S3::Bucket');
    const [, policy] = only('AWS::S3::BucketPolicy');
    expect(policy.Properties.Bucket).toEqual({ Ref: bucketId });
    expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
  });

  it('generates the token in Secrets Manager', () => {
    const [, secret] = only('AWS::SecretsManager::Secret');
    expect(secret.Properties.GenerateSecretString).toEqual(expect.objectContaining({ PasswordLength: 48 }));
    expect(secret.Properties).not.toHaveProperty('SecretString');
  });
});

describe('permissions', () => {
  it('let the master scale only its worker group, and describe with * only where AWS allows nothing narrower', () => {
    const statements = policyStatements(roleOf('MasterRole'));
    const scaling = statements.find((statement) => [statement.Action].flat().includes('autoscaling:SetDesiredCapacity'))!;
    expect([scaling.Action].flat().sort()).toEqual(['autoscaling:SetDesiredCapacity', 'autoscaling:SetInstanceProtection']);
    expect(JSON.stringify(scaling.Resource)).toContain(':autoScalingGroup:*:autoScalingGroupName/DipsTest-workers');
    const wildcard = statements.filter((statement) => [statement.Resource].flat().includes('*'));
    expect(wildcard.flatMap((statement) => [statement.Action].flat()).sort()).toEqual(['autoscaling:DescribeAutoScalingGroups', 'ec2:DescribeInstances']);
  });

  it('let the master read and write job data under its prefix only', () => {
    const [bucketId] = only('AWS::S3::Bucket');
    const statements = policyStatements(roleOf('MasterRole')).filter((statement) => JSON.stringify(statement.Resource).includes(bucketId));
    expect(statements).toHaveLength(2);
    const objects = statements.find((statement) => [statement.Action].flat().includes('s3:PutObject'))!;
    expect(objects.Resource).toEqual({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/jobs/*']] });
    const list = statements.find((statement) => statement.Action === 's3:ListBucket')!;
    expect(list.Condition).toEqual({ StringLike: { 's3:prefix': 'jobs/*' } });
  });

  it('let the workers read the token and the bundle, and nothing else', () => {
    const [secretId] = only('AWS::SecretsManager::Secret');
    const statements = policyStatements(roleOf('WorkersRole'));
    expect(statements).toHaveLength(2);
    const bundleRead = statements.find((statement) => statement.Action === 's3:GetObject')!;
    expect(JSON.stringify(bundleRead.Resource)).toMatch(/\/[0-9a-f]{64}\.gz"\]\]\}$/);
    expect(JSON.stringify(bundleRead.Resource)).not.toContain('*');
    const tokenRead = statements.find((statement) => statement !== bundleRead)!;
    expect([tokenRead.Action].flat().sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    expect(tokenRead.Resource).toEqual({ Ref: secretId });
  });

  it('give both roles Session Manager access instead of SSH', () => {
    for (const role of [roleOf('MasterRole'), roleOf('WorkersRole')]) {
      expect(JSON.stringify(resources[role]!.Properties.ManagedPolicyArns)).toContain('AmazonSSMManagedInstanceCore');
    }
  });
});

it('exports the API URL, the token secret name, the group name and the bucket name', () => {
  const outputs = template.toJSON().Outputs as Json;
  const [instanceId] = only('AWS::EC2::Instance');
  const [bucketId] = only('AWS::S3::Bucket');
  const [addressId] = only('AWS::EC2::EIP');
  template.hasResourceProperties('AWS::EC2::EIPAssociation', { AllocationId: { 'Fn::GetAtt': [addressId, 'AllocationId'] }, InstanceId: { Ref: instanceId } });
  expect(outputs.ApiUrl.Value).toEqual({ 'Fn::Join': ['', ['http://', { 'Fn::GetAtt': [addressId, 'PublicIp'] }, ':8080']] });
  expect(JSON.stringify(outputs.TokenSecretName.Value)).toContain(only('AWS::SecretsManager::Secret')[0]);
  expect(outputs.WorkerGroupName.Value).toEqual({ Ref: only('AWS::AutoScaling::AutoScalingGroup')[0] });
  expect(outputs.BucketName.Value).toEqual({ Ref: bucketId });
});

it('passes cdk-nag AwsSolutions, each acknowledged finding with its reason', () => {
  const { app } = synthesize(CONTEXT, true);
  expect(() => app.synth()).not.toThrow();
  const acknowledged: [id: string, reason: unknown][] = [];
  const visit = (construct: IConstruct) => {
    for (const entry of construct.node.metadata) {
      if (entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY) acknowledged.push(...Object.entries(entry.data as Record<string, unknown>));
    }
    construct.node.children.forEach(visit);
  };
  visit(app);
  expect(acknowledged.length).toBeGreaterThan(0);
  for (const [id, reason] of acknowledged) expect(reason, id).toMatch(/\w+ \w+ \w+/);
});
