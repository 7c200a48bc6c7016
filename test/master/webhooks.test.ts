import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { jobAccepted, parseResponse } from '../../services/protocol/api.js';
import { batchAccepted, jobsPage } from '../../services/protocol/batch.js';
import { webhookEvent } from '../../services/protocol/newcomer.js';
import { errorBody } from '../../services/protocol/errors.js';
import { refusedRange, signWebhook } from '../../services/master/webhooks.js';
import { corpus, postJob, waitUntil } from '../helpers/api.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { closeMasters, hardenedMaster } from '../hardening/master.js';

/* Webhooks reach public addresses only, unless DIPS_WEBHOOK_ALLOW_PRIVATE says otherwise: a client must
   not make the master call its own network (the instance metadata service, the VPC, its loopback).
   No worker runs here: a job canceled at once is finished, and that is when its webhook is called. */

const secret = 'webhook-secret-for-tests';
afterAll(closeMasters);

let receiver: Awaited<ReturnType<typeof startWebhookReceiver>> | undefined;
afterEach(() => {
  receiver?.close();
  receiver = undefined;
});

async function startReceiver() {
  receiver = await startWebhookReceiver();
  return receiver;
}

/** Submits a job with this webhook and cancels it: the job is finished, so its webhook is due. */
async function canceledJobWithWebhook(masterUrl: string, webhook: string): Promise<string> {
  const { id } = await parseResponse(jobAccepted, await postJob(masterUrl, [corpus('aqua.jpg')], { pipeline: '[{"op":"invert"}]', webhook }));
  expect((await fetch(`${masterUrl}/v1/jobs/${id}`, { method: 'DELETE' })).ok).toBe(true);
  return id;
}

/** The master's record of a job's delivery, as a restarted master would read it. */
function delivery(dataDir: string, jobId: string): { state: string; attempts: number; last_error: string | null } | undefined {
  const db = new DatabaseSync(path.join(dataDir, 'webhooks.sqlite'), { readOnly: true });
  try {
    return db.prepare('SELECT state, attempts, last_error FROM deliveries WHERE job_id = ?').get(jobId) as { state: string; attempts: number; last_error: string | null } | undefined;
  } finally {
    db.close();
  }
}

describe('webhook addresses', () => {
  it('classifies only public unicast addresses as callable, IPv4-mapped IPv6 as the IPv4 address it carries', () => {
    const refused = {
      '127.0.0.1': 'loopback', '::1': 'loopback', '::ffff:127.0.0.1': 'loopback',
      '10.1.2.3': 'private', '172.16.0.1': 'private', '192.168.0.1': 'private', '::ffff:10.0.0.1': 'private',
      '169.254.169.254': 'linkLocal', '::ffff:169.254.169.254': 'linkLocal', 'fe80::1': 'linkLocal',
      'fc00::1': 'uniqueLocal', 'fd12:3456::1': 'uniqueLocal', '100.64.0.1': 'carrierGradeNat', '100.127.255.254': 'carrierGradeNat',
      '0.0.0.0': 'unspecified', '::': 'unspecified', '224.0.0.1': 'multicast', 'ff02::1': 'multicast',
      '255.255.255.255': 'broadcast', '240.0.0.1': 'reserved', '192.0.2.1': 'reserved', '2001:db8::1': 'reserved',
    };
    for (const [address, range] of Object.entries(refused)) expect(refusedRange(address), address).toBe(range);
    for (const address of ['8.8.8.8', '1.1.1.1', '100.128.0.1', '172.32.0.1', '::ffff:8.8.8.8', '2606:4700:4700::1111', '2a00:1450:4001::200e'])
      expect(refusedRange(address), address).toBeUndefined();
  });

  it('refuses a literal loopback, private, link-local or mapped address at submission, naming it and the setting', async () => {
    const master = await hardenedMaster({ webhookSecret: secret });
    const cases = [
      ['http://127.0.0.1:9/hook', '127.0.0.1', 'loopback'],
      ['http://169.254.169.254/latest/meta-data/', '169.254.169.254', 'linkLocal'],
      ['https://10.0.0.5/hook', '10.0.0.5', 'private'],
      ['http://[::1]:9/hook', '::1', 'loopback'],
      ['http://[::ffff:192.168.1.10]/hook', '::ffff:c0a8:10a', 'private'],
      ['http://0x7f.1/hook', '127.0.0.1', 'loopback'],
      ['http://0.0.0.0:9/hook', '0.0.0.0', 'unspecified'],
      ['http://100.64.0.1/hook', '100.64.0.1', 'carrierGradeNat'],
      ['http://[fd00::1]/hook', 'fd00::1', 'uniqueLocal'],
      ['http://[fe80::1]/hook', 'fe80::1', 'linkLocal'],
      ['http://[::ffff:169.254.169.254]/hook', '::ffff:a9fe:a9fe', 'linkLocal'],
    ] as const;
    for (const [webhook, address, range] of cases) {
      const refused = await postJob(master.url, [corpus('aqua.jpg')], { pipeline: '[{"op":"invert"}]', webhook });
      expect(refused.status, webhook).toBe(422);
      const { error } = await parseResponse(errorBody, refused);
      expect(error.code).toBe('webhook_not_allowed');
      expect(error.message).toContain(`is ${address}, a ${range} address`);
      expect(error.message).toContain('DIPS_WEBHOOK_ALLOW_PRIVATE=true');
    }
    // Nothing was accepted.
    expect((await parseResponse(jobsPage, await fetch(`${master.url}/v1/jobs`))).jobs).toEqual([]);
  });

  it('checks the address a name resolves to when it calls: localhost is refused, once, and the receiver never hears of it', async () => {
    const master = await hardenedMaster({ webhookSecret: secret, webhookRetryMs: 50 });
    const { port, calls } = await startReceiver();
    const id = await canceledJobWithWebhook(master.url, `http://localhost:${port}/hooks/dips`);
    const record = await waitUntil(async () => delivery(master.dataDir, id), (row) => row?.state === 'failed', 10_000, 'the delivery to be given up');
    expect(record!.last_error).toMatch(/^webhook host localhost is (127\.0\.0\.1|::1), a loopback address/);
    // Well past several retry delays: it was not tried again.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(delivery(master.dataDir, id)!.attempts).toBe(1);
    expect(calls).toEqual([]);
  });

  it('with DIPS_WEBHOOK_ALLOW_PRIVATE=true calls a receiver on the local network, signed', async () => {
    const master = await hardenedMaster({ webhookSecret: secret, webhookAllowPrivate: true });
    const { port, calls } = await startReceiver();
    const id = await canceledJobWithWebhook(master.url, `http://localhost:${port}/hooks/dips`);
    await waitUntil(async () => delivery(master.dataDir, id)?.state, (state) => state === 'delivered', 10_000, 'the delivery');
    expect(calls).toHaveLength(1);
    const { headers, body } = calls[0]!;
    expect(headers['x-dips-signature']).toBe(signWebhook(secret, String(headers['x-dips-timestamp']), body));
    const event = webhookEvent.parse(JSON.parse(body));
    expect([event.event, event.job.id, event.job.status]).toEqual(['job.finished', id, 'canceled']);
  });
});

describe('a batch job\'s webhook', () => {
  it('is called once when the job finishes; the same body sent again resumes the job, which keeps its first webhook', async () => {
    const sources = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'dips-webhook-sources-')));
    await fs.copyFile(corpus('aqua.jpg'), path.join(sources, 'aqua.jpg'));
    const master = await hardenedMaster({ webhookSecret: secret, webhookAllowPrivate: true, sources: `file://${sources}/` });
    const { port, calls } = await startReceiver();
    const body = (hook: string) => JSON.stringify({ pipeline: [{ op: 'invert' }], inputs: { prefix: `file://${sources}/` }, webhook: `http://localhost:${port}/${hook}` });
    const post = (hook: string) => fetch(`${master.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(hook) });

    const refused = await fetch(`${master.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...JSON.parse(body('x')), webhook: 'ftp://example.invalid/' }) });
    expect(refused.status).toBe(422);
    expect((await parseResponse(errorBody, refused)).error.code).toBe('bad_webhook');

    // No worker runs here: the job waits, so the second body finds it unfinished.
    const first = await parseResponse(batchAccepted, await post('first'));
    const again = await parseResponse(batchAccepted, await post('second'));
    expect([again.id, again.resumed]).toEqual([first.id, true]);
    expect((await fetch(`${master.url}/v1/jobs/${first.id}`, { method: 'DELETE' })).ok).toBe(true);
    await waitUntil(async () => delivery(master.dataDir, first.id)?.state, (state) => state === 'delivered', 10_000, 'the delivery');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(calls.map(({ headers }) => headers['x-dips-event'])).toEqual(['job.finished']);
    const { headers, body: sent } = calls[0]!;
    expect(headers['x-dips-signature']).toBe(signWebhook(secret, String(headers['x-dips-timestamp']), sent));
    const event = webhookEvent.parse(JSON.parse(sent));
    expect([event.job.id, event.job.kind, event.job.status]).toEqual([first.id, 'batch', 'canceled']);
  });
});
