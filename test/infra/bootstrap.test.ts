import { spawn, spawnSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
const CLUSTER_TOKEN = randomBytes(24).toString('hex');
const SECRET_ARN = `arn:aws:secretsmanager:${REGION}:123456789012:secret:dips-token-AbCdEf`;
const PRIVATE_IP = '10.0.1.23';

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
const requests: string[] = [];

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
  const content = path.join(scratch, 'content');
  mkdirSync(path.join(content, 'bin'), { recursive: true });
  writeFileSync(path.join(content, 'bin', 'node'), '#!/bin/sh\necho stand-in runtime\n', { mode: 0o755 });
  expect(spawnSync('tar', ['-czf', path.join(scratch, 'bundle.tar.gz'), '-C', content, 'bin']).status).toBe(0);
  archive = readFileSync(path.join(scratch, 'bundle.tar.gz'));

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
      return reply(404, '');
    }
    if (url.pathname === '/asset-bucket/bundle.gz') {
      return (await signedCorrectly(request, 's3', body)) ? reply(200, archive) : reply(403, 'SignatureDoesNotMatch');
    }
    if (url.pathname === '/secretsmanager/') {
      const valid = (await signedCorrectly(request, 'secretsmanager', body)) && request.headers['x-amz-target'] === 'secretsmanager.GetSecretValue';
      if (!valid || JSON.parse(body).SecretId !== SECRET_ARN) return reply(403, 'AccessDenied');
      return reply(200, JSON.stringify({ ARN: SECRET_ARN, SecretString: CLUSTER_TOKEN }));
    }
    return reply(404, '');
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(scratch, { recursive: true, force: true });
});

function runBootstrap(root: string, overrides: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  const child = spawn('bash', [BOOTSTRAP_SCRIPT], {
    env: {
      PATH: '/usr/bin:/bin',
      DIPS_IMDS_URL: baseUrl,
      DIPS_INSTALL_ROOT: root,
      DIPS_ROLE: 'worker',
      DIPS_ASSET_URL: `${baseUrl}/asset-bucket/bundle.gz`,
      DIPS_ASSET_SHA256: createHash('sha256').update(archive).digest('hex'),
      DIPS_TOKEN_SECRET_ID: SECRET_ARN,
      DIPS_SECRETS_URL: `${baseUrl}/secretsmanager/`,
      AWS_REGION: REGION,
      DIPS_SERVICE_ARGS: 'worker --port 12345 --master http://10.0.0.5:8080',
      DIPS_SERVICE_ENV: 'DIPS_WORKER_HOST=0.0.0.0\nAWS_REGION=eu-west-3',
      DIPS_ADVERTISE_PORT: '12345',
      ...overrides,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

describe('instance bootstrap (lib/bundle/bootstrap.sh)', () => {
  it('fetches the bundle and the token with signed requests, installs both and writes the unit', async () => {
    const root = path.join(scratch, 'instance');
    const { code, stderr } = await runBootstrap(root);
    expect(code, stderr).toBe(0);
    expect(readFileSync(path.join(root, 'opt/dips/bin/node'), 'utf8')).toContain('stand-in runtime');

    const envFile = path.join(root, 'etc/dips/dips.env');
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(envFile, 'utf8').trim().split('\n').sort()).toEqual(
      [
        `DIPS_TOKEN=${CLUSTER_TOKEN}`,
        'DIPS_WORKER_HOST=0.0.0.0',
        'AWS_REGION=eu-west-3',
        `DIPS_WORKER_ADDRESS=http://${PRIVATE_IP}:12345`,
        // One libuv thread per sharp task in flight, with room: twice the vCPUs, at least 4.
        `UV_THREADPOOL_SIZE=${Math.max(4, 2 * os.availableParallelism())}`,
      ].sort(),
    );
    const unit = readFileSync(path.join(root, 'etc/systemd/system/dips-worker.service'), 'utf8');
    expect(unit).toContain('ExecStart=/opt/dips/bin/node /opt/dips/dist/services/cli/main.js worker --port 12345 --master http://10.0.0.5:8080');
    expect(unit).toContain('Restart=always');
    expect(unit).toContain('EnvironmentFile=/etc/dips/dips.env');
    expect(unit).not.toContain(CLUSTER_TOKEN);
  });

  it('sizes the libuv thread pool for the worker only', async () => {
    const root = path.join(scratch, 'master-instance');
    const { code, stderr } = await runBootstrap(root, { DIPS_ROLE: 'master', DIPS_SERVICE_ARGS: 'master --port 8080', DIPS_ADVERTISE_PORT: '' });
    expect(code, stderr).toBe(0);
    expect(readFileSync(path.join(root, 'etc/dips/dips.env'), 'utf8')).not.toContain('UV_THREADPOOL_SIZE');
    expect(existsSync(path.join(root, 'etc/systemd/system/dips-master.service'))).toBe(true);
  });

  it('refuses a bundle whose checksum differs, installing nothing', async () => {
    const root = path.join(scratch, 'tampered');
    const { code, stderr } = await runBootstrap(root, { DIPS_ASSET_SHA256: createHash('sha256').update('another archive').digest('hex') });
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/sha256 differs/);
    expect(existsSync(path.join(root, 'opt/dips'))).toBe(false);
    expect(existsSync(path.join(root, 'etc/dips/dips.env'))).toBe(false);
  });

  // Slow by design: the script retries refusals with backoff (about 30 s) before giving up.
  it('fails when AWS rejects the signature (credentials signed for another region)', async () => {
    const root = path.join(scratch, 'wrong-region');
    const before = requests.length;
    const { code } = await runBootstrap(root, { AWS_REGION: 'us-east-1' });
    expect(code).not.toBe(0);
    expect(existsSync(path.join(root, 'opt/dips'))).toBe(false);
    // Refusals are retried (IAM propagation), then given up on.
    expect(requests.slice(before).filter((request) => request === 'GET /asset-bucket/bundle.gz').length).toBeGreaterThan(1);
  }, 120_000);
});
