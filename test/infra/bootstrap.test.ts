import { spawn, spawnSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOTSTRAP_SCRIPT } from '../../lib/bundle/user-data.js';

// A stand-in for IMDSv2, S3 and Secrets Manager on loopback: it answers only requests that carry
// the IMDSv2 session token or a SigV4 signature the AWS SDK's own signer agrees with.
const REGION = 'eu-west-3';
const CREDENTIALS = { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: randomBytes(20).toString('hex'), sessionToken: randomBytes(30).toString('base64') };
const IMDS_TOKEN = randomBytes(16).toString('hex');
const CLIENT_TOKEN = randomBytes(24).toString('hex');
const WORKER_TOKEN = randomBytes(24).toString('hex');
const SECRETS: Record<string, string> = {
  [`arn:aws:secretsmanager:${REGION}:123456789012:secret:dips-token-AbCdEf`]: CLIENT_TOKEN,
  [`arn:aws:secretsmanager:${REGION}:123456789012:secret:dips-worker-token-GhIjKl`]: WORKER_TOKEN,
};
const [CLIENT_SECRET_ARN, WORKER_SECRET_ARN] = Object.keys(SECRETS) as [string, string];
const PRIVATE_IP = '10.0.1.23';
const INSTANCE_ID = 'i-0123456789abcdef0';
const PARAMETER = '/DipsTest/bundle/x64';

type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (data: SourceData) =>
  typeof data === 'string' ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);

/** The signer's hash interface on node:crypto. */
class NodeSha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
  reset(): void {}
}

let scratch: string;
let server: Server;
let baseUrl: string;
let archive: Buffer;
/** The bundle version the parameter names (its URL and sha256). */
let bundleVersion: string;
let healthy = true;
const requests: string[] = [];
/** The SignalResource calls CloudFormation received, as form fields. */
const signals: Record<string, string>[] = [];

// EC2 as the master's boot sees it: its data volume, the master it replaces, and the calls made.
const VOLUME_ID = 'vol-0123456789abcdef0';
const OLD_MASTER = 'i-0aaaaaaaaaaaaaaa0';
const ec2 = {
  /** The instance the volume is attached to, if any; 'detaching' and 'stopping' last one describe each. */
  attachedTo: undefined as string | undefined,
  detaching: false,
  instances: new Map<string, 'running' | 'stopping' | 'stopped'>(),
  calls: [] as string[],
};
const xml = (action: string, body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">${body}</${action}Response>`;

/** The EC2 Query API calls the takeover makes, with EC2's rules: a volume moves only off a stopped instance. */
function ec2Answer(form: Record<string, string>): [number, string] {
  const action = form.Action!;
  const instance = form.InstanceId ?? form['InstanceId.1'];
  ec2.calls.push(instance ? `${action} ${instance}` : action);
  if (action === 'DescribeVolumes') {
    const status = ec2.detaching ? 'in-use' : ec2.attachedTo ? 'in-use' : 'available';
    const attachment = ec2.attachedTo ? `<item><volumeId>${VOLUME_ID}</volumeId><instanceId>${ec2.attachedTo}</instanceId><device>/dev/sdf</device><status>${ec2.detaching ? 'detaching' : 'attached'}</status></item>` : '';
    if (ec2.detaching) {
      ec2.detaching = false;
      ec2.attachedTo = undefined;
    }
    return [200, xml(action, `<volumeSet><item><volumeId>${VOLUME_ID}</volumeId><status>${status}</status><attachmentSet>${attachment}</attachmentSet></item></volumeSet>`)];
  }
  if (action === 'DescribeInstances') {
    const state = ec2.instances.get(instance!);
    if (state === 'stopping') ec2.instances.set(instance!, 'stopped');
    return [200, xml(action, `<reservationSet><item><instancesSet><item><instanceId>${instance}</instanceId><instanceState><name>${state}</name></instanceState></item></instancesSet></item></reservationSet>`)];
  }
  if (action === 'StopInstances') ec2.instances.set(instance!, 'stopping');
  else if (action === 'StartInstances') ec2.instances.set(instance!, 'running');
  else if (action === 'DetachVolume') {
    if (ec2.attachedTo !== instance || ec2.instances.get(instance!) === 'running') return [400, xml('Error', '<Code>IncorrectState</Code>')];
    ec2.detaching = true;
  } else if (action === 'AttachVolume') {
    if (ec2.attachedTo || form.VolumeId !== VOLUME_ID) return [400, xml('Error', '<Code>VolumeInUse</Code>')];
    ec2.attachedTo = instance;
  } else return [400, xml('Error', '<Code>InvalidAction</Code>')];
  return [200, xml(action, '<return>true</return>')];
}

async function readBody(request: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of request) body += chunk;
  return body;
}

/** True when the request's SigV4 signature is the one the AWS SDK computes for the same request. */
async function signedCorrectly(request: IncomingMessage, service: string, body: string): Promise<boolean> {
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
    request.headers.authorization ?? '',
  );
  if (!match || match[1] !== CREDENTIALS.accessKeyId || match[2] !== REGION || match[3] !== service) return false;
  const signedHeaders = match[4]!.split(';');
  if (!signedHeaders.includes('x-amz-security-token')) return false;
  const headers = Object.fromEntries(signedHeaders.map((name) => [name, String(request.headers[name])]));
  const amzDate = headers['x-amz-date']!;
  const signingDate = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  const url = new URL(request.url!, baseUrl);
  const signer = new SignatureV4({
    service,
    region: REGION,
    credentials: CREDENTIALS,
    sha256: NodeSha256,
    uriEscapePath: service !== 's3',
    applyChecksum: signedHeaders.includes('x-amz-content-sha256'),
  });
  const expected = await signer.sign(
    { method: request.method!, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, query: {}, headers, body },
    { signingDate },
  );
  return String(expected.headers.authorization).endsWith(`Signature=${match[5]}`);
}

beforeAll(async () => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'dips-bootstrap-'));
  archive = standInBundle('v1');

  server = createServer(async (request, response) => {
    const body = await readBody(request);
    const url = new URL(request.url!, baseUrl);
    requests.push(`${request.method} ${url.pathname}`);
    const reply = (status: number, payload: string | Buffer) => response.writeHead(status).end(payload);
    if (url.pathname === '/latest/api/token' && request.method === 'PUT') return reply(200, IMDS_TOKEN);
    if (url.pathname.startsWith('/latest/meta-data/')) {
      if (request.headers['x-aws-ec2-metadata-token'] !== IMDS_TOKEN) return reply(401, '');
      const item = url.pathname.slice('/latest/meta-data/'.length);
      if (item === 'iam/security-credentials/') return reply(200, 'dips-instance-role');
      if (item === 'iam/security-credentials/dips-instance-role') {
        return reply(200, JSON.stringify({ Code: 'Success', AccessKeyId: CREDENTIALS.accessKeyId, SecretAccessKey: CREDENTIALS.secretAccessKey, Token: CREDENTIALS.sessionToken }));
      }
      if (item === 'local-ipv4') return reply(200, PRIVATE_IP);
      if (item === 'instance-id') return reply(200, INSTANCE_ID);
      return reply(404, '');
    }
    if (url.pathname === '/asset-bucket/bundle.gz') {
      return (await signedCorrectly(request, 's3', body)) ? reply(200, archive) : reply(403, 'SignatureDoesNotMatch');
    }
    if (url.pathname === '/secretsmanager/') {
      const valid = (await signedCorrectly(request, 'secretsmanager', body)) && request.headers['x-amz-target'] === 'secretsmanager.GetSecretValue';
      const secretId = valid ? (JSON.parse(body) as { SecretId: string }).SecretId : '';
      if (!(secretId in SECRETS)) return reply(403, 'AccessDenied');
      return reply(200, JSON.stringify({ ARN: secretId, SecretString: SECRETS[secretId] }));
    }
    if (url.pathname === '/ssm/') {
      const valid = (await signedCorrectly(request, 'ssm', body)) && request.headers['x-amz-target'] === 'AmazonSSM.GetParameter';
      if (!valid || (JSON.parse(body) as { Name: string }).Name !== PARAMETER) return reply(400, 'ParameterNotFound');
      return reply(200, JSON.stringify({ Parameter: { Name: PARAMETER, Type: 'String', Value: bundleVersion } }));
    }
    if (url.pathname === '/cloudformation/') {
      if (!(await signedCorrectly(request, 'cloudformation', body))) return reply(403, 'SignatureDoesNotMatch');
      signals.push(Object.fromEntries(new URLSearchParams(body)));
      return reply(200, '<SignalResourceResponse/>');
    }
    if (url.pathname === '/ec2/') {
      if (!(await signedCorrectly(request, 'ec2', body))) return reply(403, 'SignatureDoesNotMatch');
      const [status, answer] = ec2Answer(Object.fromEntries(new URLSearchParams(body)));
      return reply(status, answer);
    }
    if (url.pathname === '/healthz') return healthy ? reply(200, '{"ok":true}') : reply(503, '');
    return reply(404, '');
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  bundleVersion = `${baseUrl}/asset-bucket/bundle.gz ${VERSION}`;
});

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
/** The version the stack names for the stand-in bundle (a bundleInputsHash, in the real stack). */
const VERSION = sha256('stand-in bundle v1');

/** A bundle archive whose bin/node says which `label` it is, carrying BUNDLE_VERSION as the real builder writes it. */
function standInBundle(label: string): Buffer {
  const content = path.join(scratch, `content-${label}`);
  mkdirSync(path.join(content, 'bin'), { recursive: true });
  writeFileSync(path.join(content, 'bin', 'node'), `#!/bin/sh\necho stand-in runtime ${label}\n`, { mode: 0o755 });
  writeFileSync(path.join(content, 'BUNDLE_VERSION'), `${sha256(`stand-in bundle ${label}`)}\n`);
  const file = path.join(scratch, `bundle-${label}.tar.gz`);
  expect(spawnSync('tar', ['-czf', file, '-C', content, 'bin', 'BUNDLE_VERSION']).status).toBe(0);
  return readFileSync(file);
}

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(scratch, { recursive: true, force: true });
});

function runBootstrap(root: string, overrides: Record<string, string> = {}, mode = 'boot'): Promise<{ code: number | null; stderr: string }> {
  const child = spawn('bash', [BOOTSTRAP_SCRIPT, mode], {
    env: {
      PATH: '/usr/bin:/bin',
      DIPS_IMDS_URL: baseUrl,
      DIPS_INSTALL_ROOT: root,
      // Refusals are retried, but briefly here: the real default waits about 30 s.
      DIPS_RETRY_COUNT: '2',
      DIPS_RETRY_MAX_SECONDS: '10',
      DIPS_HEALTH_SECONDS: '3',
      DIPS_ROLE: 'worker',
      DIPS_STACK_NAME: 'DipsTest',
      DIPS_SIGNAL_RESOURCE: 'WorkersGroup1234ABCD',
      DIPS_BUNDLE_PARAMETER: PARAMETER,
      DIPS_SECRET_IDS: `DIPS_WORKER_TOKEN=${WORKER_SECRET_ARN}`,
      AWS_REGION: REGION,
      DIPS_SSM_URL: `${baseUrl}/ssm/`,
      DIPS_SECRETS_URL: `${baseUrl}/secretsmanager/`,
      DIPS_CFN_URL: `${baseUrl}/cloudformation/`,
      DIPS_EC2_URL: `${baseUrl}/ec2/`,
      DIPS_POLL_SECONDS: '0.1',
      DIPS_SERVICE_ARGS: 'worker --port 12345 --master http://10.0.0.5:8080',
      DIPS_NODE_ARGS: '--initial-old-space-size=128',
      DIPS_SERVICE_ENV: 'DIPS_WORKER_HOST=0.0.0.0\nAWS_REGION=eu-west-3',
      DIPS_HEALTH_URL: `${baseUrl}/healthz`,
      DIPS_LOG_GROUP: '/dips/DipsTest',
      DIPS_ADVERTISE_PORT: '12345',
      ...overrides,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

/** The signals one run sent, from the index `before`. */
const signalsSince = (before: number) => signals.slice(before).map((signal) => ({ ...signal }));

describe('instance bootstrap (lib/bundle/bootstrap.sh)', () => {
  it('reads the bundle version and the secret with signed requests, installs them, writes the units and signals SUCCESS', async () => {
    const root = path.join(scratch, 'instance');
    const before = signals.length;
    const { code, stderr } = await runBootstrap(root);
    expect(code, stderr).toBe(0);
    expect(readFileSync(path.join(root, 'opt/dips/bin/node'), 'utf8')).toContain('stand-in runtime');
    expect(readFileSync(path.join(root, 'opt/dips/BUNDLE_VERSION'), 'utf8').trim()).toBe(VERSION);

    const envFile = path.join(root, 'etc/dips/dips.env');
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(envFile, 'utf8').trim().split('\n').sort()).toEqual(
      [
        // The worker token only: a worker holds no client credential.
        `DIPS_WORKER_TOKEN=${WORKER_TOKEN}`,
        'DIPS_WORKER_HOST=0.0.0.0',
        'AWS_REGION=eu-west-3',
        `DIPS_WORKER_ADDRESS=http://${PRIVATE_IP}:12345`,
        // One libuv thread per sharp task in flight, with room: twice the vCPUs, at least 4.
        `UV_THREADPOOL_SIZE=${Math.max(4, 2 * os.availableParallelism())}`,
      ].sort(),
    );
    const unit = readFileSync(path.join(root, 'etc/systemd/system/dips-worker.service'), 'utf8');
    expect(unit).toContain('ExecStart=/opt/dips/bin/node --initial-old-space-size=128 /opt/dips/dist/services/cli/main.js worker --port 12345 --master http://10.0.0.5:8080');
    expect(unit).toContain('Restart=always');
    expect(unit).toContain('EnvironmentFile=/etc/dips/dips.env');
    expect(unit).toContain('StandardOutput=append:/var/log/dips/worker.log');
    expect(unit).not.toContain(WORKER_TOKEN);
    expect(readFileSync(path.join(root, 'etc/systemd/system/dips-drain.service'), 'utf8')).toContain('ExecStart=/usr/local/sbin/dips-boot drain-watch');
    expect(signalsSince(before)).toEqual([
      { Action: 'SignalResource', Version: '2010-05-15', StackName: 'DipsTest', LogicalResourceId: 'WorkersGroup1234ABCD', UniqueId: INSTANCE_ID, Status: 'SUCCESS' },
    ]);
  });

  it('gives the master both secrets, and no thread-pool sizing or drain watcher', async () => {
    const root = path.join(scratch, 'master-instance');
    const { code, stderr } = await runBootstrap(root, {
      DIPS_ROLE: 'master',
      DIPS_SERVICE_ARGS: 'master --port 8080',
      DIPS_ADVERTISE_PORT: '',
      DIPS_SECRET_IDS: `DIPS_TOKEN=${CLIENT_SECRET_ARN}\nDIPS_WORKER_TOKEN=${WORKER_SECRET_ARN}`,
    });
    expect(code, stderr).toBe(0);
    const env = readFileSync(path.join(root, 'etc/dips/dips.env'), 'utf8');
    expect(env).toContain(`DIPS_TOKEN=${CLIENT_TOKEN}\n`);
    expect(env).toContain(`DIPS_WORKER_TOKEN=${WORKER_TOKEN}\n`);
    expect(env).not.toContain('UV_THREADPOOL_SIZE');
    expect(existsSync(path.join(root, 'etc/systemd/system/dips-master.service'))).toBe(true);
    expect(existsSync(path.join(root, 'etc/systemd/system/dips-drain.service'))).toBe(false);
  });

  const masterBoot = (root: string) =>
    runBootstrap(root, {
      DIPS_ROLE: 'master',
      DIPS_SERVICE_ARGS: 'master --port 8080',
      DIPS_ADVERTISE_PORT: '',
      DIPS_SECRET_IDS: `DIPS_TOKEN=${CLIENT_SECRET_ARN}\nDIPS_WORKER_TOKEN=${WORKER_SECRET_ARN}`,
      DIPS_SIGNAL_RESOURCE: 'MasterInstance5678',
      DIPS_DATA_VOLUME_ID: VOLUME_ID,
    });
  const replacing = () => {
    ec2.attachedTo = OLD_MASTER;
    ec2.detaching = false;
    ec2.instances = new Map([[OLD_MASTER, 'running']]);
    ec2.calls = [];
  };

  it('a replacement master takes the data volume over: stops the old master, waits, detaches, attaches it to itself', async () => {
    replacing();
    const before = signals.length;
    const { code, stderr } = await masterBoot(path.join(scratch, 'replacement'));
    expect(code, stderr).toBe(0);
    expect(ec2.attachedTo).toBe(INSTANCE_ID);
    expect(ec2.instances.get(OLD_MASTER)).toBe('stopped');
    // The old master is stopped (its service, then its OS) before the volume leaves it.
    expect(ec2.calls.filter((call) => !call.startsWith('Describe'))).toEqual([`StopInstances ${OLD_MASTER}`, `DetachVolume ${OLD_MASTER}`, `AttachVolume ${INSTANCE_ID}`]);
    expect(ec2.calls.indexOf(`DescribeInstances ${OLD_MASTER}`)).toBeLessThan(ec2.calls.indexOf(`DetachVolume ${OLD_MASTER}`));
    expect(signalsSince(before)).toEqual([expect.objectContaining({ Status: 'SUCCESS', LogicalResourceId: 'MasterInstance5678' })]);
  });

  it("attaches a new stack's volume without stopping anything", async () => {
    replacing();
    ec2.attachedTo = undefined;
    const { code, stderr } = await masterBoot(path.join(scratch, 'first-master'));
    expect(code, stderr).toBe(0);
    expect(ec2.calls.filter((call) => !call.startsWith('Describe'))).toEqual([`AttachVolume ${INSTANCE_ID}`]);
  });

  it('gives the volume back and starts the old master again when the replacement fails to boot', async () => {
    replacing();
    const before = signals.length;
    healthy = false;
    const { code, stderr } = await masterBoot(path.join(scratch, 'failed-replacement')).finally(() => (healthy = true));
    expect(code).not.toBe(0);
    expect(ec2.attachedTo).toBe(OLD_MASTER);
    expect(ec2.instances.get(OLD_MASTER)).toBe('running');
    expect(ec2.calls.filter((call) => !call.startsWith('Describe'))).toEqual([
      `StopInstances ${OLD_MASTER}`, `DetachVolume ${OLD_MASTER}`, `AttachVolume ${INSTANCE_ID}`,
      `DetachVolume ${INSTANCE_ID}`, `AttachVolume ${OLD_MASTER}`, `StartInstances ${OLD_MASTER}`,
    ]);
    expect(signalsSince(before)).toEqual([expect.objectContaining({ Status: 'FAILURE', UniqueId: expect.stringMatching(/service unhealthy/) })]);
  });

  it('refuses a bundle of another version than the stack names, installing nothing, and signals FAILURE with the reason', async () => {
    const root = path.join(scratch, 'tampered');
    const before = signals.length;
    const saved = bundleVersion;
    bundleVersion = `${baseUrl}/asset-bucket/bundle.gz ${sha256('another version')}`;
    const { code, stderr } = await runBootstrap(root).finally(() => (bundleVersion = saved));
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/FAILED bundle version differs/);
    expect(readdirSync(path.join(root, 'opt'))).toEqual([]);
    expect(existsSync(path.join(root, 'etc/dips/dips.env'))).toBe(false);
    const sent = signalsSince(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ Status: 'FAILURE', LogicalResourceId: 'WorkersGroup1234ABCD' });
    expect(sent[0]!.UniqueId).toBe(`${INSTANCE_ID} bundle version differs from the stack_s: not installed`.slice(0, 64));
  });

  it('signals FAILURE naming the step when a command fails (a secret it may not read)', async () => {
    const root = path.join(scratch, 'denied');
    const before = signals.length;
    const { code, stderr } = await runBootstrap(root, { DIPS_SECRET_IDS: `DIPS_WORKER_TOKEN=${WORKER_SECRET_ARN}-other` });
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/FAILED reading the secrets failed/);
    expect(signalsSince(before)).toEqual([expect.objectContaining({ Status: 'FAILURE', UniqueId: expect.stringMatching(/^i-0123456789abcdef0 reading the secrets failed/) })]);
    // The whole reason, command included, is in the boot log (CloudWatch Logs).
    expect(stderr).toMatch(/reading the secrets failed \(value=\$\(aws_json secretsmanager .*: exit \d+\)/);
  });

  it('signals FAILURE when the service never answers its health check', async () => {
    const root = path.join(scratch, 'unhealthy');
    const before = signals.length;
    healthy = false;
    const { code, stderr } = await runBootstrap(root).finally(() => (healthy = true));
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/FAILED service unhealthy: no answer from .*\/healthz within 3 s/);
    expect(signalsSince(before)).toEqual([expect.objectContaining({ Status: 'FAILURE', UniqueId: expect.stringMatching(/^i-0123456789abcdef0 service unhealthy/) })]);
  });

  it('updates in place: a new version replaces the installed bundle and sends no boot signal; the same version is left alone', async () => {
    const root = path.join(scratch, 'instance');
    const before = signals.length;
    const same = await runBootstrap(root, {}, 'update');
    expect(same.code, same.stderr).toBe(0);
    expect(existsSync(path.join(root, 'opt/dips.previous'))).toBe(false);

    const saved = { archive, bundleVersion };
    archive = standInBundle('v2');
    bundleVersion = `${baseUrl}/asset-bucket/bundle.gz ${sha256('stand-in bundle v2')}`;
    const updated = await runBootstrap(root, {}, 'update').finally(() => ({ archive, bundleVersion } = saved));
    expect(updated.code, updated.stderr).toBe(0);
    expect(readFileSync(path.join(root, 'opt/dips/bin/node'), 'utf8')).toContain('stand-in runtime v2');
    expect(readFileSync(path.join(root, 'opt/dips.previous/bin/node'), 'utf8')).not.toContain('v2');
    expect(signalsSince(before)).toEqual([]);
  });

  it('fails when AWS rejects the signature (credentials signed for another region), after retrying', async () => {
    const root = path.join(scratch, 'wrong-region');
    const before = requests.length;
    const { code } = await runBootstrap(root, { AWS_REGION: 'us-east-1' });
    expect(code).not.toBe(0);
    expect(existsSync(path.join(root, 'opt/dips'))).toBe(false);
    // Refusals are retried (IAM propagation), then given up on.
    expect(requests.slice(before).filter((request) => request === 'POST /ssm/').length).toBeGreaterThan(1);
  }, 60_000);
});
