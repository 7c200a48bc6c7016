import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowedCidrFunction } from '../../lib/api-endpoint.js';
import type { BundleCommand } from '../../lib/bundle-release.js';
import { archOfInstanceType } from '../../lib/bundle/target.js';
import { instanceShape, readConfig } from '../../lib/config.js';
import { PIXEL_MEMORY_SHARE } from '../../services/image-core/pixel-memory.js';
import { planImage } from '../../services/image-core/planner.js';
import { parsePipeline } from '../../services/image-core/pipeline.js';
import { AMIS, CLI_BUNDLING_STACKS, type CdkCommand, codeVersion, synthesize } from './synth.js';
import { workerNodeArgs } from '../../services/worker/node-args.js';

const ALLOWED_CIDR = '203.0.113.0/24';
// A Graviton master and x86 workers: both bundles, both images.
// Batch jobs may read two buckets' prefixes and write one.
const CONTEXT = {
  allowedCidr: ALLOWED_CIDR, minWorkers: '2', maxWorkers: '5', masterInstanceType: 't4g.small', workerInstanceType: 't3.micro', stackName: 'DipsTest',
  sources: 's3://photos/in/,s3://other-bucket', destinations: 's3://photos/out',
};

type Json = Record<string, any>;
let workDir: string;
let synthesized: ReturnType<typeof synthesize>;
let template: Template;
let resources: Record<string, Json>;
/** The same stack after a change to the services' code only. */
let updated: { resources: Record<string, Json> };
/** The template each CLI command synthesizes: one synth per distinct context the CLI passes. */
let templateOf: Record<CdkCommand, Json>;
/** Where the stand-in bundle command records each run ("<arch> <version>" lines) and writes its archives. */
let buildLog: string;
/** The bundle command's runs once every synth is done. */
let buildsWhileSynthesizing: string[];

/** A bundle command as cdk-assets would run it: records the run, writes an archive, prints its path. */
const recordingCommand: BundleCommand = (arch, version) => [
  process.execPath,
  '-e',
  `const fs = require('node:fs'), [arch, version, log] = process.argv.slice(1);
   fs.appendFileSync(log, arch + ' ' + version + '\\n');
   const archive = log + '-' + arch + '.tar.gz';
   fs.writeFileSync(archive, 'stand-in ' + arch + ' bundle ' + version);
   console.log(archive);`,
  arch,
  version,
  buildLog,
];
const builds = () => (existsSync(buildLog) ? readFileSync(buildLog, 'utf8').trim().split('\n') : []);

function ofType(type: string, from = resources): [string, Json][] {
  return Object.entries(from).filter(([, resource]) => resource.Type === type);
}

function only(type: string, from = resources): [string, Json] {
  const found = ofType(type, from);
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
const masterInstance = (from = resources) => ofType('AWS::EC2::Instance', from).find(([id]) => id.startsWith('MasterInstance'))!;
const workerLaunchTemplate = (from = resources) => {
  const [, group] = only('AWS::AutoScaling::AutoScalingGroup', from);
  return from[group.Properties.LaunchTemplate.LaunchTemplateId.Ref]!.Properties.LaunchTemplateData as Json;
};

beforeAll(() => {
  workDir = mkdtempSync(path.join(os.tmpdir(), 'dips-infra-'));
  buildLog = path.join(workDir, 'builds');
  // Three synths in all, shared by every assertion below (each takes seconds).
  synthesized = synthesize({ context: CONTEXT, command: 'deploy', bundleCommand: recordingCommand, outdir: path.join(workDir, 'deploy') });
  Validations.of(synthesized.app).addPlugins(new AwsSolutionsChecks(synthesized.app));
  template = Template.fromStack(synthesized.stack);
  resources = template.toJSON().Resources;
  const second = synthesize({ context: CONTEXT, bundleVersion: codeVersion('v2'), outdir: path.join(workDir, 'second') });
  updated = { resources: Template.fromStack(second.stack).toJSON().Resources };
  // cdk ls and cdk destroy pass no bundling stacks; synth, diff and deploy all pass "**".
  const listed = Template.fromStack(synthesize({ context: CONTEXT, command: 'ls', outdir: path.join(workDir, 'ls') }).stack).toJSON();
  templateOf = Object.fromEntries(
    Object.entries(CLI_BUNDLING_STACKS).map(([command, stacks]) => [command, stacks.length === 0 ? listed : template.toJSON()]),
  ) as Record<CdkCommand, Json>;
  buildsWhileSynthesizing = builds();
}, 180_000);

afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('context', () => {
  const configOf = (context: Record<string, string>) => () => readConfig(new App({ context }).node);

  it('refuses to synthesize without allowedCidr, naming it', () => {
    expect(configOf({})).toThrow(/context "allowedCidr" is required/);
  });

  it('refuses 0.0.0.0/0 and malformed CIDRs', () => {
    expect(configOf({ allowedCidr: '0.0.0.0/0' })).toThrow(/must not be 0\.0\.0\.0\/0/);
    expect(configOf({ allowedCidr: '10.0.0.300/8' })).toThrow(/must be an IPv4 CIDR/);
  });

  it('refuses a maximum below the minimum', () => {
    expect(configOf({ allowedCidr: ALLOWED_CIDR, minWorkers: '3', maxWorkers: '2' })).toThrow(/maxWorkers/);
  });

  it('refuses an instance type of the other architecture, naming both', () => {
    expect(configOf({ allowedCidr: ALLOWED_CIDR, architecture: 'arm64', workerInstanceType: 't3.micro' })).toThrow(
      /"workerInstanceType" is t3\.micro, an x86-64 type, but "architecture" is arm64/,
    );
    expect(configOf({ allowedCidr: ALLOWED_CIDR, architecture: 'arm64' })).not.toThrow();
  });

  it('refuses sources and destinations that are not s3:// URIs of valid bucket names, naming each', () => {
    expect(configOf({ allowedCidr: ALLOWED_CIDR, sources: 's3://photos/in/,/data/in' })).toThrow(/context "sources": "\/data\/in" is not an s3:\/\/bucket\/prefix URI/);
    expect(configOf({ allowedCidr: ALLOWED_CIDR, destinations: 's3://Photos/out/' })).toThrow(/context "destinations": "s3:\/\/Photos\/out\/" names the bucket "Photos": S3 bucket names are 3 to 63 lowercase/);
    expect(configOf({ allowedCidr: ALLOWED_CIDR, sources: 'file:///srv/in' })).toThrow(/"file:\/\/\/srv\/in" is not an s3:\/\/bucket\/prefix URI/);
    expect(configOf({ allowedCidr: ALLOWED_CIDR, destinations: 's3://photos/out/../in' })).toThrow(/"\.\." segment/);
    expect(configOf({ allowedCidr: ALLOWED_CIDR, sources: 's3://photos/in*' })).toThrow(/wildcard/);
    expect(readConfig(new App({ context: { allowedCidr: ALLOWED_CIDR, sources: ' s3://photos/in , s3://other-bucket/' } }).node).sources).toEqual([
      { uri: 's3://photos/in', bucket: 'photos', prefix: 'in/' },
      { uri: 's3://other-bucket/', bucket: 'other-bucket', prefix: '' },
    ]);
  });

  it("tells a worker type's memory and vCPUs from its name, and asks for them where it cannot", () => {
    const shapes = ['t4g.nano', 't3.micro', 't4g.medium', 't3a.2xlarge', 'c7g.medium', 'c7a.large', 'm7i-flex.large', 'c7gn.xlarge', 'r8g.4xlarge', 'g5.xlarge', 'x2gd.large', 'c5.metal'].map(instanceShape);
    expect(shapes.map((shape) => shape && `${shape.memoryMiB}/${shape.vcpus}`)).toEqual([
      '512/2', '1024/2', '4096/2', '32768/8', '2048/1', '4096/2', '8192/2', '8192/4', '131072/16', undefined, undefined, undefined,
    ]);
    expect(configOf({ allowedCidr: ALLOWED_CIDR, workerInstanceType: 'g5.xlarge' })).toThrow(/"workerInstanceType" is g5\.xlarge, whose memory and vCPUs synth cannot tell from its name: give them as "workerMemoryMiB" and "workerVcpus"/);
    expect(configOf({ allowedCidr: ALLOWED_CIDR, workerInstanceType: 't4g.nano' })).toThrow(/a worker of 512 MiB \(t4g\.nano\) is too small/);
    expect(configOf({ allowedCidr: ALLOWED_CIDR, workerMemoryMiB: 'lots' })).toThrow(/context "workerMemoryMiB" must be a whole number/);
  });

  it("sizes the planner's worker budget so that every task a worker runs at once fits, never below the micro's", () => {
    const budgetMiB = (context: Record<string, string>) => readConfig(new App({ context: { allowedCidr: ALLOWED_CIDR, ...context } }).node).workerImageMemoryBytes / 2 ** 20;
    // The default t4g.micro keeps the 512 MiB its tiling figures were measured with.
    expect(budgetMiB({})).toBe(512);
    expect(budgetMiB({ workerInstanceType: 'g5.xlarge', workerMemoryMiB: '16384', workerVcpus: '4' })).toBe(5290);
    for (const workerInstanceType of ['t4g.small', 't4g.medium', 't3.xlarge', 'c7g.large', 'c7gn.xlarge', 'm7g.2xlarge', 'r8g.large']) {
      const { memoryMiB, vcpus } = instanceShape(workerInstanceType)!;
      // One task per vCPU, each a whole stage at the planner's share of the budget: together within what the system leaves.
      expect(vcpus * PIXEL_MEMORY_SHARE * budgetMiB({ workerInstanceType }), workerInstanceType).toBeLessThanOrEqual(memoryMiB - 512);
      expect(budgetMiB({ workerInstanceType }), workerInstanceType).toBeGreaterThanOrEqual(512);
    }
  });

  it('lets the planner run on a larger worker type what does not fit a micro one', () => {
    // A 100 MP photo turned by 30°: rotation by such angles runs whole, on one worker.
    const rotate = parsePipeline([{ op: 'rotate', angle: 30 }]);
    const plan = (workerInstanceType: string) => () =>
      planImage({ width: 10_000, height: 10_000, channels: 3 }, rotate, { workerMemoryBytes: readConfig(new App({ context: { allowedCidr: ALLOWED_CIDR, workerInstanceType } }).node).workerImageMemoryBytes });
    expect(plan('t4g.micro')).toThrow(/run on the whole image.*more than the 384 MiB a worker has/);
    expect(plan('t4g.medium')).not.toThrow();
  });

  it('tells the architecture from the instance type', () => {
    expect(['t4g.micro', 'm7g.large', 'c7gn.xlarge', 'r8g.medium', 't3.micro', 'm7i.large', 'c7a.medium', 'g5.xlarge', 'g5g.xlarge'].map(archOfInstanceType)).toEqual([
      'arm64', 'arm64', 'arm64', 'arm64', 'x64', 'x64', 'x64', 'x64', 'arm64',
    ]);
  });
});

describe('bundles', () => {
  it.each(Object.keys(CLI_BUNDLING_STACKS) as CdkCommand[])('are not built by `cdk %s` while it synthesizes, and its template names the same bundle versions', (command) => {
    expect(buildsWhileSynthesizing).toEqual([]);
    const parameters = ofType('AWS::SSM::Parameter', templateOf[command].Resources).map(([, parameter]) => parameter.Properties as Json);
    for (const arch of ['x64', 'arm64']) {
      const parameter = parameters.find((each) => each.Name === `/DipsTest/bundle/${arch}`)!;
      // "<URL of the object named by the version> <version>": what deploy will install, known without building.
      expect(JSON.stringify(parameter.Value)).toMatch(new RegExp(`/${codeVersion('v1')(arch)} ${codeVersion('v1')(arch)}"`));
    }
    expect(templateOf[command]).toEqual(template.toJSON());
  });

  it('are built when CDK publishes them (cdk deploy): the asset manifest names the command, one per architecture in use', () => {
    const manifest = JSON.parse(readFileSync(path.join(workDir, 'deploy', `${synthesized.stack.artifactId}.assets.json`), 'utf8')) as Json;
    const bundles = Object.entries(manifest.files as Json).filter(([, file]) => file.source.executable);
    expect(bundles.map(([hash]) => hash).sort()).toEqual([codeVersion('v1')('arm64'), codeVersion('v1')('x64')].sort());
    for (const [hash, file] of bundles) {
      expect(Object.values(file.destinations as Json).map((destination) => destination.objectKey)).toEqual([hash]);
      // As cdk-assets runs it before uploading: the command's stdout is the file to upload.
      const [command, ...args] = file.source.executable as string[];
      const run = spawnSync(command!, args, { encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      expect(readFileSync(run.stdout.trim(), 'utf8')).toMatch(new RegExp(`^stand-in (x64|arm64) bundle ${hash}$`));
    }
    expect(builds().sort()).toEqual([`arm64 ${codeVersion('v1')('arm64')}`, `x64 ${codeVersion('v1')('x64')}`]);
  });
});

describe('updates', () => {
  it('keep the master: a change of service code leaves its image, user data, volumes and subnet as they were', () => {
    const [, before] = masterInstance();
    const [, after] = masterInstance(updated.resources);
    for (const property of ['ImageId', 'UserData', 'Volumes', 'BlockDeviceMappings', 'SubnetId', 'InstanceType', 'LaunchTemplate']) {
      expect(after.Properties[property], property).toEqual(before.Properties[property]);
    }
    expect(before.Properties.ImageId).toBe(AMIS.arm64);
    const volume = (from: Record<string, Json>) => ofType('AWS::EC2::Volume', from).map(([id, each]) => [id, each.Properties]);
    expect(volume(updated.resources)).toEqual(volume(resources));
    // The workers' launch template too: no rolling replacement for new code.
    expect(workerLaunchTemplate(updated.resources)).toEqual(workerLaunchTemplate());
  });

  it('deliver new code in place: the update association changes, runs on every instance of the stack and is waited for', () => {
    const [, before] = only('AWS::SSM::Association');
    const [, after] = only('AWS::SSM::Association', updated.resources);
    expect(before.Properties).toMatchObject({
      Name: 'AWS-RunShellScript',
      Targets: [{ Key: 'tag:dips:stack', Values: ['DipsTest'] }],
      MaxConcurrency: '1',
      MaxErrors: '0',
      WaitForSuccessTimeoutSeconds: 900,
    });
    expect(before.Properties.Parameters.commands[0]).toMatch(/^\/usr\/local\/sbin\/dips-boot update /);
    expect(after.Properties.Parameters.commands).not.toEqual(before.Properties.Parameters.commands);
    expect(before.DependsOn).toEqual(expect.arrayContaining([masterInstance()[0], only('AWS::AutoScaling::AutoScalingGroup')[0]]));
  });

  it("keep the master's data on a volume of its own, snapshotted rather than deleted, that its boot attaches", () => {
    const [volumeId, volume] = only('AWS::EC2::Volume');
    const [, instance] = masterInstance();
    // Not attached by CloudFormation: a replacement master is created while the old one holds the volume.
    expect(instance.Properties.Volumes).toBeUndefined();
    expect(ofType('AWS::EC2::VolumeAttachment')).toEqual([]);
    expect(volume.DeletionPolicy).toBe('Snapshot');
    expect(volume.Properties).toMatchObject({ Encrypted: true, VolumeType: 'gp3', Size: 20 });
    expect(userDataText(instance.Properties.UserData)).toContain(`DIPS_DATA_VOLUME_ID=\${Ref:${volumeId}}`);
    expect(instance.Properties.Tags).toEqual(expect.arrayContaining([{ Key: 'dips:role', Value: 'master' }, { Key: 'dips:stack', Value: 'DipsTest' }]));
  });

  it('let a replacement master take the volume over: this volume, and instances tagged as this stack\'s master, only', () => {
    const [volumeId] = only('AWS::EC2::Volume');
    const statements = policyStatements(roleOf('MasterRole'));
    const ec2Arn = (resource: unknown[]) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ...resource]] });
    expect(statements.filter((statement) => /DataVolume/.test(statement.Sid))).toEqual([
      { Sid: 'MoveDataVolume', Effect: 'Allow', Action: ['ec2:AttachVolume', 'ec2:DetachVolume'], Resource: ec2Arn([':volume/', { Ref: volumeId }]) },
      {
        Sid: 'MoveDataVolumeBetweenMasters',
        Effect: 'Allow',
        Action: ['ec2:AttachVolume', 'ec2:DetachVolume', 'ec2:StartInstances', 'ec2:StopInstances'],
        Resource: ec2Arn([':instance/*']),
        Condition: { StringEquals: { 'aws:ResourceTag/dips:stack': 'DipsTest', 'aws:ResourceTag/dips:role': 'master' } },
      },
      { Sid: 'DescribeDataVolume', Effect: 'Allow', Action: 'ec2:DescribeVolumes', Resource: '*' },
    ]);
    // Nothing else of the stack may stop, start or move volumes.
    const elsewhere = ofType('AWS::IAM::Policy').flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Json[]).filter((statement) => !/DataVolume/.test(statement.Sid));
    expect(elsewhere.flatMap((statement) => [statement.Action].flat()).filter((action) => /^ec2:(Attach|Detach|Stop|Start)/.test(action))).toEqual([]);
  });
});

describe('signals', () => {
  it('the master is CREATE_COMPLETE only once its boot signals success', () => {
    const [id, instance] = masterInstance();
    expect(instance.CreationPolicy).toEqual({ ResourceSignal: { Count: 1, Timeout: 'PT20M' } });
    expect(userDataText(instance.Properties.UserData)).toContain(`DIPS_SIGNAL_RESOURCE=${id}`);
  });

  it('the worker group waits for its workers at creation and in each rolling update, one worker at a time', () => {
    const [id, group] = only('AWS::AutoScaling::AutoScalingGroup');
    expect(group.CreationPolicy).toEqual({ ResourceSignal: { Count: 2, Timeout: 'PT20M' } });
    expect(group.UpdatePolicy.AutoScalingRollingUpdate).toMatchObject({ MaxBatchSize: 1, MinInstancesInService: 1, WaitOnResourceSignals: true, PauseTime: 'PT20M' });
    expect(userDataText(workerLaunchTemplate().UserData)).toContain(`DIPS_SIGNAL_RESOURCE=${id}`);
  });

  it('a terminating worker drains first (lifecycle hook), and the master may mark silent workers unhealthy', () => {
    template.hasResourceProperties('AWS::AutoScaling::LifecycleHook', { LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING', HeartbeatTimeout: 180, DefaultResult: 'CONTINUE' });
    const scaling = policyStatements(roleOf('MasterRole')).find((statement) => [statement.Action].flat().includes('autoscaling:SetInstanceHealth'))!;
    expect(JSON.stringify(scaling.Resource)).toContain(':autoScalingGroup:*:autoScalingGroupName/DipsTest-workers');
  });
});

describe('network', () => {
  it('spans two availability zones with flow logs and an S3 gateway endpoint, the master in a private subnet', () => {
    const zones = new Set(ofType('AWS::EC2::Subnet').map(([, subnet]) => JSON.stringify(subnet.Properties.AvailabilityZone)));
    expect(zones.size).toBe(2);
    template.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL' });
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith(['.s3'])]) }),
    });
    expect(ofType('AWS::EC2::NatGateway')).toHaveLength(0);
    const [, instance] = masterInstance();
    const subnet = resources[instance.Properties.SubnetId.Ref]!;
    expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
    expect(ofType('AWS::EC2::EIP')).toHaveLength(0);
  });

  it('lets only the master reach the workers, on port 12345 only', () => {
    const workerGroup = securityGroupId('DIPS workers');
    const masterGroup = securityGroupId('DIPS master');
    expect(ingressRules(workerGroup)).toEqual([
      expect.objectContaining({ IpProtocol: 'tcp', FromPort: 12345, ToPort: 12345, SourceSecurityGroupId: { 'Fn::GetAtt': [masterGroup, 'GroupId'] } }),
    ]);
  });

  it('opens the API port to the VPC (CloudFront VPC origin) and the workers only, and no SSH anywhere', () => {
    const workerGroup = securityGroupId('DIPS workers');
    const masterGroup = securityGroupId('DIPS master');
    const [vpcId] = only('AWS::EC2::VPC');
    const rules = ingressRules(masterGroup);
    expect(rules).toHaveLength(2);
    expect(rules).toContainEqual(expect.objectContaining({ FromPort: 8080, ToPort: 8080, CidrIp: { 'Fn::GetAtt': [vpcId, 'CidrBlock'] } }));
    expect(rules).toContainEqual(expect.objectContaining({ FromPort: 8080, ToPort: 8080, SourceSecurityGroupId: { 'Fn::GetAtt': [workerGroup, 'GroupId'] } }));
    const allRules = [...ingressRules(masterGroup), ...ingressRules(workerGroup)];
    expect(allRules.filter((rule) => rule.FromPort <= 22 && rule.ToPort >= 22)).toEqual([]);
  });
});

describe('HTTPS endpoint', () => {
  it('serves the API over HTTPS only through CloudFront, uncached, from a VPC origin on the master', () => {
    const [originId, origin] = only('AWS::CloudFront::VpcOrigin');
    expect(origin.Properties.VpcOriginEndpointConfig).toMatchObject({ HTTPPort: 8080, OriginProtocolPolicy: 'http-only' });
    expect(JSON.stringify(origin.Properties.VpcOriginEndpointConfig.Arn)).toContain(masterInstance()[0]);
    const [, distribution] = only('AWS::CloudFront::Distribution');
    const behavior = distribution.Properties.DistributionConfig.DefaultCacheBehavior;
    expect(behavior.ViewerProtocolPolicy).toBe('https-only');
    expect(behavior.AllowedMethods).toEqual(expect.arrayContaining(['POST', 'DELETE']));
    expect(behavior.CachePolicyId).toBe('4135ea2d-6df8-44a3-9df3-4b5a84be39ad'); // CachingDisabled
    expect(JSON.stringify(distribution.Properties.DistributionConfig.Origins)).toContain(originId);
  });

  it('lets only allowedCidr through, at the edge', () => {
    const [, fn] = only('AWS::CloudFront::Function');
    expect(fn.Properties.FunctionCode).toBe(allowedCidrFunction(ALLOWED_CIDR));
    // The function's own logic, run as CloudFront would run it.
    const handler = new Function('event', `${allowedCidrFunction(ALLOWED_CIDR)}\nreturn handler(event);`) as (event: Json) => Json;
    const request = { uri: '/v1/jobs' };
    expect(handler({ viewer: { ip: '203.0.113.77' }, request })).toBe(request);
    expect(handler({ viewer: { ip: '203.0.114.1' }, request })).toMatchObject({ statusCode: 403 });
    expect(handler({ viewer: { ip: '2001:db8::1' }, request })).toMatchObject({ statusCode: 403 });
  });
});

describe('master', () => {
  it("runs the pinned Ubuntu image for its architecture, with the instance type from context", () => {
    const [, instance] = masterInstance();
    expect(instance.Properties.InstanceType).toBe('t4g.small');
    expect(instance.Properties.ImageId).toBe(AMIS.arm64);
    expect(workerLaunchTemplate().ImageId).toBe(AMIS.x64);
  });

  it('requires IMDSv2 and encrypts its volume', () => {
    const [, instance] = masterInstance();
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
    const [instanceId] = masterInstance();
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/EC2',
      MetricName: 'StatusCheckFailed_System',
      Dimensions: [{ Name: 'InstanceId', Value: { Ref: instanceId } }],
      AlarmActions: [Match.stringLikeRegexp('^arn:aws:automate:eu-west-3:ec2:recover$')],
    });
  });

  it('starts `dips master` with S3 storage, the group name, both secrets by ARN and no secret in clear', () => {
    const [, instance] = masterInstance();
    const [bucketId] = only('AWS::S3::Bucket');
    // Logical ids: StorageToken<hash> (clients) and StorageWorkerToken<hash>.
    const [clientSecret, workerSecret] = ['StorageToken', 'StorageWorkerToken'].map((prefix) => ofType('AWS::SecretsManager::Secret').find(([id]) => id.startsWith(prefix))![0]);
    const text = userDataText(instance.Properties.UserData);
    expect(text).toContain("DIPS_SERVICE_ARGS='master --port 8080 --data-dir /var/lib/dips'");
    expect(text).toContain('DIPS_HOST=0.0.0.0');
    expect(text).toContain('DIPS_STORAGE=s3');
    expect(text).toContain(`DIPS_S3_BUCKET=\${Ref:${bucketId}}`);
    expect(text).toContain('DIPS_S3_PREFIX=jobs/');
    expect(text).toContain('DIPS_ASG_NAME=DipsTest-workers');
    expect(text).toContain('DIPS_MAX_PIXELS=100000000');
    // t3.micro workers: 1 GiB, of which 512 MiB for image work.
    expect(text).toContain('DIPS_WORKER_MEMORY_BYTES=536870912');
    expect(text).toContain('AWS_REGION=${Ref:AWS::Region}');
    expect(text).toContain(`DIPS_SECRET_IDS='DIPS_TOKEN=\${Ref:${clientSecret}}\nDIPS_WORKER_TOKEN=\${Ref:${workerSecret}}'`);
    expect(text).toContain("DIPS_BUNDLE_PARAMETER='/DipsTest/bundle/arm64'");
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

  it('launch the instance type from context with IMDSv2 and encrypted volumes', () => {
    const data = workerLaunchTemplate();
    expect(data.InstanceType).toBe('t3.micro');
    expect(data.MetadataOptions.HttpTokens).toBe('required');
    expect(data.BlockDeviceMappings).toEqual([expect.objectContaining({ Ebs: expect.objectContaining({ Encrypted: true }) })]);
  });

  it("start `dips worker` pointed at the master's private address, with the worker token only", () => {
    const [instanceId] = masterInstance();
    const text = userDataText(workerLaunchTemplate().UserData);
    expect(text).toContain(`DIPS_SERVICE_ARGS='worker --port 12345 --master http://\${GetAtt:${instanceId}.PrivateIp}:8080'`);
    expect(text).toContain(`DIPS_NODE_ARGS='${workerNodeArgs.join(' ')}'`);
    expect(text).toContain('DIPS_ADVERTISE_PORT=12345');
    expect(text).toContain('DIPS_WORKER_HOST=0.0.0.0');
    // The memory the master's planner assumes (t3.micro: 512 MiB), which the worker lends its whole stages from.
    expect(text).toContain('DIPS_WORKER_MEMORY_BYTES=536870912');
    expect(text).toMatch(/DIPS_SECRET_IDS='DIPS_WORKER_TOKEN=\$\{Ref:StorageWorkerToken[0-9A-F]+\}'\n/);
    expect(text).toContain("DIPS_BUNDLE_PARAMETER='/DipsTest/bundle/x64'");
    expect(text).toContain('DIPS_ROLE=worker');
    expect(text).toContain('if [ "$DIPS_ROLE" = worker ]; then echo "UV_THREADPOOL_SIZE=$(( $(nproc) * 2 > 4 ? $(nproc) * 2 : 4 ))"; fi');
  });

  it('fit in EC2 user data (16 KB) as valid bash, for both roles', () => {
    const scripts = [masterInstance()[1].Properties.UserData, workerLaunchTemplate().UserData];
    for (const script of scripts.map(userDataText)) {
      expect(script.startsWith('#!/bin/bash\n')).toBe(true);
      expect(Buffer.byteLength(script)).toBeLessThan(16 * 1024);
      const check = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
      expect(check.status, check.stderr).toBe(0);
    }
  });
});

describe('data, secrets and logs', () => {
  it('keeps job data in an encrypted, private, expiring bucket that cdk destroy empties and removes', () => {
    const [bucketId, bucket] = only('AWS::S3::Bucket');
    expect(bucket.DeletionPolicy).toBe('Delete');
    expect(bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(bucket.Properties.LifecycleConfiguration.Rules).toContainEqual(expect.objectContaining({ Prefix: 'jobs/', ExpirationInDays: 7, Status: 'Enabled' }));
    template.hasResourceProperties('Custom::S3AutoDeleteObjects', { BucketName: { Ref: bucketId } });
  });

  it("lets browsers read the bucket's answers to presigned URLs (the CORS rule test/web/console-s3 runs the console against)", () => {
    const [, bucket] = only('AWS::S3::Bucket');
    expect(bucket.Properties.CorsConfiguration.CorsRules).toEqual([
      { AllowedMethods: ['GET', 'HEAD', 'PUT'], AllowedOrigins: ['*'], ExposedHeaders: ['ETag'], MaxAge: 3600 },
    ]);
  });

  it('refuses requests without TLS in the bucket policy', () => {
    const [bucketId] = only('AWS::S3::Bucket');
    const [, policy] = only('AWS::S3::BucketPolicy');
    expect(policy.Properties.Bucket).toEqual({ Ref: bucketId });
    expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
  });

  it('generates two separate secrets in Secrets Manager: the client token and the worker token', () => {
    const secrets = ofType('AWS::SecretsManager::Secret');
    expect(secrets).toHaveLength(2);
    for (const [, secret] of secrets) {
      expect(secret.Properties.GenerateSecretString).toEqual(expect.objectContaining({ PasswordLength: 48 }));
      expect(secret.Properties).not.toHaveProperty('SecretString');
    }
  });

  it('keeps the boot and service logs in CloudWatch Logs for the retention period', () => {
    template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/dips/DipsTest', RetentionInDays: 30 });
    const text = userDataText(masterInstance()[1].Properties.UserData);
    expect(text).toContain('/var/log/cloud-init-output.log');
    expect(text).toContain("DIPS_LOG_GROUP='/dips/DipsTest'");
  });
});

describe('permissions', () => {
  it('let the master scale only its worker group, and describe with * only where AWS allows nothing narrower', () => {
    const statements = policyStatements(roleOf('MasterRole'));
    const scaling = statements.find((statement) => [statement.Action].flat().includes('autoscaling:SetDesiredCapacity'))!;
    expect([scaling.Action].flat().sort()).toEqual(['autoscaling:SetDesiredCapacity', 'autoscaling:SetInstanceHealth', 'autoscaling:SetInstanceProtection']);
    expect(JSON.stringify(scaling.Resource)).toContain(':autoScalingGroup:*:autoScalingGroupName/DipsTest-workers');
    const wildcard = statements.filter((statement) => [statement.Resource].flat().includes('*'));
    expect(wildcard.flatMap((statement) => [statement.Action].flat()).filter((action) => !/^(ssmmessages|ec2messages|ssm):/.test(action)).sort()).toEqual([
      'autoscaling:DescribeAutoScalingGroups',
      'ec2:DescribeInstances',
      'ec2:DescribeVolumes',
    ]);
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

  it('let the master list, read and write exactly the batch prefixes named by context, and tell it them', () => {
    const named = policyStatements(roleOf('MasterRole')).filter((statement) => /Batch/.test(statement.Sid));
    const arn = (resource: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${resource}`]] });
    expect(named).toEqual([
      { Sid: 'ListBatchData0', Effect: 'Allow', Action: 's3:ListBucket', Resource: arn('photos'), Condition: { StringLike: { 's3:prefix': ['in/*', 'out/*'] } } },
      { Sid: 'ListBatchData1', Effect: 'Allow', Action: 's3:ListBucket', Resource: arn('other-bucket'), Condition: { StringLike: { 's3:prefix': ['*'] } } },
      { Sid: 'ReadBatchSources', Effect: 'Allow', Action: 's3:GetObject', Resource: [arn('other-bucket/*'), arn('photos/in/*')] },
      { Sid: 'WriteBatchDestinations', Effect: 'Allow', Action: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'], Resource: arn('photos/out/*') },
    ]);
    // No other statement of the master names those buckets.
    const others = policyStatements(roleOf('MasterRole')).filter((statement) => !/Batch/.test(statement.Sid));
    expect(others.filter((statement) => /photos|other-bucket/.test(JSON.stringify(statement)))).toEqual([]);
    const text = userDataText(masterInstance()[1].Properties.UserData);
    expect(text).toContain('DIPS_SOURCES=s3://photos/in/,s3://other-bucket\n');
    expect(text).toContain('DIPS_DESTINATIONS=s3://photos/out\n');
  });

  it('let the workers read nothing of the batch buckets: the master hands them blobs', () => {
    expect(JSON.stringify(policyStatements(roleOf('WorkersRole')))).not.toMatch(/photos|other-bucket/);
  });

  it('let the workers read their bundle, its version and the worker token, never the client token', () => {
    const statements = policyStatements(roleOf('WorkersRole'));
    const bundleRead = statements.find((statement) => statement.Action === 's3:GetObject')!;
    expect(JSON.stringify(bundleRead.Resource)).toMatch(new RegExp(`:s3:::cdk-[a-z0-9]+-assets-[0-9]+-eu-west-3/${codeVersion('v1')('x64')}"\\]\\]\\}$`));
    expect(JSON.stringify(bundleRead.Resource)).not.toContain('*');
    const secretReads = statements.filter((statement) => [statement.Action].flat().includes('secretsmanager:GetSecretValue'));
    expect(secretReads.map((statement) => statement.Resource)).toEqual([{ Ref: expect.stringMatching(/^StorageWorkerToken/) }]);
    const parameterRead = statements.find((statement) => statement.Action === 'ssm:GetParameter')!;
    expect(JSON.stringify(parameterRead.Resource)).toContain('Bundlex64');
  });

  it('give Session Manager and the SSM agent what they need, without the managed policy and its ssm:GetParameter* on *', () => {
    for (const role of [roleOf('MasterRole'), roleOf('WorkersRole')]) {
      expect(resources[role]!.Properties.ManagedPolicyArns).toBeUndefined();
      const statements = policyStatements(role);
      const actions = statements.flatMap((statement) => [statement.Action].flat());
      expect(actions).toEqual(expect.arrayContaining(['ssmmessages:OpenDataChannel', 'ec2messages:GetMessages', 'ssm:UpdateInstanceInformation']));
      const onEverything = statements.filter((statement) => [statement.Resource].flat().includes('*')).flatMap((statement) => [statement.Action].flat());
      expect(onEverything.filter((action) => action.startsWith('ssm:GetParameter'))).toEqual([]);
    }
  });
});

it('exports the HTTPS API URL, both secret names, the group, the bucket and the log group', () => {
  const outputs = template.toJSON().Outputs as Json;
  const [distributionId] = only('AWS::CloudFront::Distribution');
  expect(outputs.ApiUrl.Value).toEqual({ 'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [distributionId, 'DomainName'] }]] });
  expect(JSON.stringify(outputs.TokenSecretName.Value)).toMatch(/StorageToken[0-9A-F]{8}"/);
  expect(JSON.stringify(outputs.WorkerTokenSecretName.Value)).toContain('StorageWorkerToken');
  expect(outputs.WorkerGroupName.Value).toEqual({ Ref: only('AWS::AutoScaling::AutoScalingGroup')[0] });
  expect(outputs.BucketName.Value).toEqual({ Ref: only('AWS::S3::Bucket')[0] });
  expect(outputs.LogGroupName).toBeDefined();
});

it('passes cdk-nag AwsSolutions, each acknowledged finding with its reason', () => {
  expect(() => synthesized.app.synth()).not.toThrow();
  const acknowledged: [id: string, reason: unknown][] = [];
  const visit = (construct: IConstruct) => {
    for (const entry of construct.node.metadata) {
      if (entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY) acknowledged.push(...Object.entries(entry.data as Record<string, unknown>));
    }
    construct.node.children.forEach(visit);
  };
  visit(synthesized.app);
  expect(acknowledged.length).toBeGreaterThan(0);
  for (const [id, reason] of acknowledged) expect(reason, id).toMatch(/\w+ \w+ \w+/);
});
