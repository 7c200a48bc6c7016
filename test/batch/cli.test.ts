import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dipsBin, exited, killAll, runDips, startCluster, type DipsProcess } from '../helpers/processes.js';
import { webhookEvent } from '../../services/protocol/newcomer.js';
import { waitUntil } from '../helpers/api.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { filesUnder, tempDir, writeImages } from './support.js';

let master: DipsProcess;
let sources: string;
let destinations: string;
const env = () => ({ DIPS_MASTER_URL: master.url });

beforeAll(async () => {
  const tmp = await tempDir('batch-cli');
  sources = path.join(tmp, 'in');
  destinations = path.join(tmp, 'out');
  await writeImages(path.join(sources, 'quick'), 40);
  await writeImages(path.join(sources, 'slow'), 300);
  ({ master } = await startCluster({
    workers: 1,
    dataDir: path.join(tmp, 'data'),
    env: { DIPS_SOURCES: `file://${sources}`, DIPS_DESTINATIONS: `file://${destinations}`, DIPS_WEBHOOK_SECRET: 'batch-cli-webhooks', DIPS_WEBHOOK_ALLOW_PRIVATE: 'true' },
  }));
}, 60_000);

afterAll(killAll);

describe('dips submit --from, dips jobs, dips retry', () => {
  it('submit --from/--to runs the job to the end, reports the counts and calls its --webhook; jobs lists it; retry says nothing failed', async () => {
    const receiver = await startWebhookReceiver();
    const run = await runDips(['submit', '--from', `file://${sources}/quick`, '--to', `file://${destinations}/quick/`, '--pipeline', '[{"op":"grayscale"}]', '--format', 'png', '--webhook', receiver.url('/done')], env());
    expect(run.code, run.stderr).toBe(0);
    const id = /accepted job (\S+)/.exec(run.stderr)?.[1];
    expect(run.stderr).toContain(`job ${id} succeeded: 40 done, 0 failed, 0 skipped of 40`);
    expect((await filesUnder(path.join(destinations, 'quick'))).filter((name) => name.endsWith('.png'))).toHaveLength(40);
    await waitUntil(async () => receiver.calls.length, (count) => count >= 1, 10_000, 'the webhook');
    receiver.close();
    const event = webhookEvent.parse(JSON.parse(receiver.calls[0]!.body));
    expect([event.job.id, event.job.kind, event.job.status, event.job.progress.done]).toEqual([id, 'batch', 'succeeded', 40]);

    const jobs = await runDips(['jobs'], env());
    expect(jobs.code, jobs.stderr).toBe(0);
    expect(jobs.stdout.split('\n')[0]).toMatch(/^ID\s+STATUS\s+DONE\s+FAILED\s+KIND\s+CREATED$/);
    expect(jobs.stdout).toMatch(new RegExp(`${id}\\s+succeeded\\s+40/40\\s+0\\s+batch`));

    const retry = await runDips(['retry', id!], env());
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stdout).toContain(`job ${id}: 0 failed items re-queued (succeeded)`);
  });

  it('is resumable: run again after Ctrl-C, it attaches to the same job and follows it to the end', async () => {
    const args = [dipsBin, 'submit', '--from', `file://${sources}/slow`, '--to', `file://${destinations}/slow`, '--pipeline', '[{"op":"median","size":7},{"op":"blur","sigma":4}]', '--format', 'png'];
    const first = spawn(process.execPath, args, { env: { ...process.env, ...env() }, stdio: ['ignore', 'ignore', 'pipe'] });
    const id = await new Promise<string>((resolve) =>
      createInterface({ input: first.stderr! }).on('line', (line) => {
        const found = /accepted job (\S+)/.exec(line)?.[1];
        if (found) resolve(found);
      }),
    );
    first.kill('SIGINT');
    await exited(first);
    const second = await runDips(args.slice(1), env());
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`attached to unfinished job ${id}`);
    expect(second.stderr).toContain(`job ${id} succeeded: 300 done`);
    expect((await fs.readdir(path.join(destinations, 'slow'), { recursive: true })).filter((name) => name.endsWith('.png'))).toHaveLength(300);
  });
});

describe('dips download', () => {
  it('saves a job\'s results as dips submit --out would, keeps files already there unless --overwrite, and names an unknown job', async () => {
    const photos = [path.join(sources, 'quick/set-0/img-1.png'), path.join(sources, 'quick/set-0/img-2.png')];
    const submitted = await runDips(['submit', ...photos, '--pipeline', '[{"op":"invert"}]'], env());
    expect(submitted.code, submitted.stderr).toBe(0);
    const id = /job (\S+) accepted/.exec(submitted.stderr)?.[1];
    const out = await tempDir('download');

    const first = await runDips(['download', id!, '--out', out], env());
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`job ${id} succeeded: 2 results in ${out}`);
    expect((await fs.readdir(out)).sort()).toEqual(['img-1.png', 'img-2.png']);
    for (const name of ['img-1.png', 'img-2.png']) {
      const [input, result] = await Promise.all([sharp(path.join(sources, 'quick/set-0', name)).raw().toBuffer(), sharp(path.join(out, name)).raw().toBuffer()]);
      expect(result.equals(Buffer.from(input.map((value) => 255 - value)))).toBe(true);
    }

    await fs.writeFile(path.join(out, 'img-1.png'), 'mine');
    const again = await runDips(['download', id!, '--out', out], env());
    expect(again.stderr).toContain(`${path.join(out, 'img-1.png')}: exists, kept (--overwrite replaces it)`);
    expect(await fs.readFile(path.join(out, 'img-1.png'), 'utf8')).toBe('mine');
    expect((await runDips(['download', id!, '--out', out, '--overwrite'], env())).code).toBe(0);
    expect((await sharp(path.join(out, 'img-1.png')).metadata()).format).toBe('png');

    // Cancelling a finished job changes nothing: its results stay downloadable.
    const cancel = await runDips(['cancel', id!], env());
    expect(cancel.stdout).toBe(`job ${id} succeeded: 2 done, 0 failed of 2 (it had finished: nothing to cancel)\n`);
    const later = await tempDir('download-later');
    expect((await runDips(['download', id!, '--out', later], env())).code).toBe(0);
    expect((await fs.readdir(later)).sort()).toEqual(['img-1.png', 'img-2.png']);

    const unknown = await runDips(['download', 'no-such-job', '--out', out], env());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/404 job_not_found/);
  });

  it('of a job that wrote its results to storage says where they are', async () => {
    const run = await runDips(['submit', '--from', `file://${sources}/quick/set-0/`, '--to', `file://${destinations}/elsewhere/`, '--pipeline', '[{"op":"invert"}]'], env());
    expect(run.code, run.stderr).toBe(0);
    const id = /accepted job (\S+)/.exec(run.stderr)?.[1];
    const download = await runDips(['download', id!, '--out', await tempDir('download')], env());
    expect(download.code).toBe(1);
    expect(download.stderr).toMatch(new RegExp(`job ${id} wrote its results to storage \\(the first: file://${destinations}/elsewhere/\\S+\\); the master keeps none to download`));
  });
});
