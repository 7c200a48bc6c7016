import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { Admission, diskLedgerFile, freeDiskBytes, UploadDisk } from '../../services/master/admission.js';
import { corpus, postJob } from '../helpers/api.js';
import { closeMasters, hardenedMaster } from './master.js';
import { parseResponse } from '../../services/protocol/api.js';
import { errorBody } from '../../services/protocol/errors.js';

const pipeline = JSON.stringify([{ op: 'invert' }]);
afterAll(closeMasters);

const errorCode = async (response: Response) => (await parseResponse(errorBody, response)).error;

describe('admission under concurrency', () => {
  it('never accepts more queued images than DIPS_MAX_QUEUED_IMAGES, however many submit at once', async () => {
    // No worker: nothing leaves the queue, so every accepted image is still pending at the end.
    const { url, master } = await hardenedMaster({ maxQueuedImages: 20 });
    const images = [corpus('aqua.jpg'), corpus('aqua.jpg'), corpus('aqua.jpg')];
    const answers = await Promise.all(Array.from({ length: 30 }, () => postJob(url, images, { pipeline })));
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status !== 202 && status !== 429)).toEqual([]);
    // 6 jobs of 3 fill 18 places; a seventh would need 21.
    expect(statuses.filter((status) => status === 202)).toHaveLength(6);
    expect(master.store.pendingImages().count).toBe(18);
    const refused = answers.find((answer) => answer.status === 429)!;
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await errorCode(refused)).code).toBe('saturated');
  });

  it('gives a refused or failed request its reservation back', async () => {
    const { url } = await hardenedMaster({ maxQueuedImages: 2 });
    const images = [corpus('aqua.jpg'), corpus('storm.jpg')];
    const bad = await postJob(url, images, { pipeline: JSON.stringify([{ op: 'no-such-op' }]) });
    expect(bad.status).toBe(422);
    const tooBig = await postJob(url, [...images, corpus('aqua.jpg')], { pipeline });
    expect(tooBig.status).toBe(429);
    expect((await postJob(url, images, { pipeline })).status).toBe(202);
    expect((await postJob(url, [corpus('aqua.jpg')], { pipeline })).status).toBe(429);
  });

  it('holds concurrent disk reservations within the free space less the reserve', async () => {
    // The admission alone, with a disk whose free space the test decides: 10 MB above the reserve.
    const reserve = 1_000_000_000;
    const admission = new Admission(
      { maxQueuedImages: 1000, maxRequestBytes: 50_000_000, maxJobPixels: 1e12 },
      () => 0,
      new UploadDisk(reserve, async () => reserve + 10_000_000),
    );
    const request = { headers: { 'content-length': '3000000' } } as unknown as IncomingMessage;
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => admission.admit(request)));
    const admitted = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    expect(admitted).toHaveLength(3); // 3 x 3 MB fit in 10 MB, a fourth does not
    const refusal = outcomes.find((outcome) => outcome.status === 'rejected')!.reason as { status: number; code: string };
    expect(refusal).toMatchObject({ status: 503, code: 'insufficient_storage' });
    admitted[0]!.value.release();
    admitted[0]!.value.release(); // twice: still one request's bytes
    await expect(admission.admit(request)).resolves.toMatchObject({ bytes: 3_000_000 });
    await expect(admission.admit(request)).rejects.toMatchObject({ status: 503 });
  });
});

describe('the disk budget shared by the master and its storage service', () => {
  const reserve = 1_000_000_000;
  const free = async () => reserve + 10_000_000;
  const ledgerIn = async () => diskLedgerFile(await fs.mkdtemp(path.join(os.tmpdir(), 'dips-ledger-')));
  /** A hold written into the ledger as another process left it. */
  const plantHold = (ledger: string, hold: { holder: string; pid: number; started?: number; bytes: number }) => {
    const raw = new DatabaseSync(ledger);
    raw.prepare('INSERT INTO holds (holder, pid, started, bytes) VALUES (?, ?, ?, ?)').run(hold.holder, hold.pid, hold.started ?? null, hold.bytes);
    raw.close();
  };

  it('refuses in one process what another was promised, and gives it back when released', async () => {
    const ledger = await ledgerIn();
    // Two budgets on one ledger file: what the master and its storage service open.
    const master = new UploadDisk(reserve, free, Date.now, ledger);
    const storageService = new UploadDisk(reserve, free, Date.now, ledger);
    try {
      const upload = await master.hold(6_000_000, 'a multipart job');
      await expect(storageService.hold(6_000_000, 'a session file')).rejects.toMatchObject({ status: 503, code: 'insufficient_storage', message: expect.stringMatching(/4000000 bytes free.*a session file needs 6000000/) });
      const small = await storageService.hold(3_000_000, 'a small file');
      upload.release();
      await expect(storageService.hold(6_000_000, 'a session file')).resolves.toBeDefined();
      small.release();
      // A master that stops while an upload holds bytes gives them back: the next one starts with the whole budget.
      await master.hold(4_000_000, 'an upload cut off by the stop');
      master.close();
      const restarted = new UploadDisk(reserve, free, Date.now, ledger);
      await expect(restarted.hold(5_000_000, 'a job')).rejects.toMatchObject({ status: 503 }); // the session file's 6 MB are still held
      storageService.close();
      await expect(restarted.hold(10_000_000, 'a job')).resolves.toBeDefined();
      restarted.close();
    } finally {
      master.close();
      storageService.close();
    }
  });

  it('counts kept bytes until a reading of the disk can have seen them, and drops the holds of a process that died', async () => {
    const ledger = await ledgerIn();
    let now = 1_000_000;
    const clock = () => now;
    const master = new UploadDisk(reserve, free, clock, ledger);
    const storageService = new UploadDisk(reserve, free, clock, ledger);
    try {
      (await master.hold(8_000_000, 'a job')).kept();
      // The disk reading (fixed here) does not show them yet: still counted, in the other process too.
      await expect(storageService.hold(3_000_000, 'a file')).rejects.toMatchObject({ status: 503 });
      now += 1_000;
      (await storageService.hold(3_000_000, 'a file')).release();

      // A process killed while holding 9 MB: its pid no longer runs.
      plantHold(ledger, { holder: 'killed', pid: spawnSync(process.execPath, ['-e', '']).pid!, bytes: 9_000_000 });
      now += 1_000; // the next reading drops it
      await expect(storageService.hold(9_000_000, 'a big file')).resolves.toBeDefined();
    } finally {
      master.close();
      storageService.close();
    }
  });

  it('drops the holds of a process whose pid a later one was given (after a reboot), and keeps a live one', async () => {
    const ledger = await ledgerIn();
    let now = 1_000_000;
    const budget = new UploadDisk(reserve, free, () => now, ledger);
    const sleeper = spawn('sleep', ['30']);
    try {
      await once(sleeper, 'spawn');
      const startOf = (pid: number) => Number((readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ')[19]);
      // Before a reboot a process had this test's pid, and the sleeper's, and held 9 MB each.
      for (const pid of [process.pid, sleeper.pid!]) plantHold(ledger, { holder: 'before the reboot', pid, started: startOf(pid) - 1, bytes: 9_000_000 });
      now += 1_000;
      (await budget.hold(9_000_000, 'a big file')).release();

      // The sleeper itself, still running, keeps what it holds; once it has gone, so has its hold.
      plantHold(ledger, { holder: 'live', pid: sleeper.pid!, started: startOf(sleeper.pid!), bytes: 9_500_000 });
      now += 1_000;
      await expect(budget.hold(1_000_000, 'a file')).rejects.toMatchObject({ status: 503 });
      sleeper.kill();
      await once(sleeper, 'exit');
      now += 1_000;
      await expect(budget.hold(1_000_000, 'a file')).resolves.toBeDefined();
    } finally {
      sleeper.kill();
      budget.close();
    }
  });
});

describe('request limits', () => {
  it('refuses a request over DIPS_MAX_REQUEST_BYTES in total, declared or streamed, and keeps nothing', async () => {
    const { url, dataDir } = await hardenedMaster({ maxRequestBytes: 400_000 });
    // Each file is under the per-file limit; together they are not.
    const declared = await postJob(url, [corpus('aqua.jpg'), corpus('storm.jpg'), corpus('aqua.jpg')], { pipeline });
    expect(declared.status).toBe(413);
    expect(await errorCode(declared)).toMatchObject({ code: 'request_too_large', message: expect.stringMatching(/400000 bytes/) });

    // The same body without a Content-Length: counted as it arrives.
    const photo = await fs.readFile(corpus('aqua.jpg'));
    const boundary = 'dips-boundary';
    const part = (name: string) =>
      Buffer.concat([Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="images"; filename="${name}"\r\ncontent-type: image/jpeg\r\n\r\n`), photo, Buffer.from('\r\n')]);
    const chunks = [part('a.jpg'), part('b.jpg'), part('c.jpg'), Buffer.from(`--${boundary}--\r\n`)];
    const streamed = await fetch(`${url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: new ReadableStream({
        pull(controller) {
          const next = chunks.shift();
          if (next) controller.enqueue(next);
          else controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect((await errorCode(streamed)).code).toBe('request_too_large');
    expect(await fs.readdir(path.join(dataDir, 'spool')).catch(() => [])).toEqual([]);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('answers 503 insufficient_storage before the disk falls below DIPS_MIN_FREE_DISK_BYTES', async () => {
    // A reserve 1 GB above what is free now: this disk counts as full whatever others write meanwhile.
    const minFreeDiskBytes = (await freeDiskBytes(os.tmpdir())) + 1_000_000_000;
    const { url } = await hardenedMaster({ minFreeDiskBytes });
    const refused = await postJob(url, [corpus('aqua.jpg')], { pipeline });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await errorCode(refused)).toMatchObject({ code: 'insufficient_storage', message: expect.stringMatching(/disk has \d+ bytes free.*keeps \d+ in reserve/) });
  });

  it('refuses a job whose images together exceed DIPS_MAX_JOB_PIXELS', async () => {
    const { url } = await hardenedMaster({ maxJobPixels: 1400 * 875 * 2 - 1 });
    const over = await postJob(url, [corpus('aqua.jpg'), corpus('aqua.jpg')], { pipeline });
    expect(over.status).toBe(413);
    expect(await errorCode(over)).toMatchObject({ code: 'job_too_many_pixels', message: expect.stringMatching(/2450000 pixels.*2449999/) });
    expect((await postJob(url, [corpus('aqua.jpg')], { pipeline })).status).toBe(202);
  });
});
