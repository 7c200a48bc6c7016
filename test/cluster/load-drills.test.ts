import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parsePipeline } from '../../services/image-core/pipeline.js';
import { processImage } from '../../services/image-core/process-image.js';
import { download, metric, pixelsOf, postJob, waitForJob, waitForWorker, waitUntil } from '../helpers/api.js';
import { smallCrops } from '../helpers/hostile-corpus.js';
import { exited, killAll, memoryOf, startCluster, startDips } from '../helpers/processes.js';
import { jobAccepted, parseResponse } from '../../services/protocol/api.js';
import { errorBody } from '../../services/protocol/errors.js';

const pipeline = JSON.stringify([{ op: 'blur', sigma: 1 }, { op: 'invert' }]);
/** Distinct inputs, so a result delivered to the wrong job shows as wrong pixels or size. */
const distinctInputs = 20;
/** A master that holds a few hundred small jobs' state needs far less; a leak of uploads or results would pass it. */
const masterMemoryBound = 400 * 1024 * 1024;

let tmp: string;
let inputs: Array<{ name: string; data: Buffer }>;
let references: Array<Awaited<ReturnType<typeof pixelsOf>>>;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-drills-'));
  inputs = await smallCrops(distinctInputs);
  const steps = parsePipeline(JSON.parse(pipeline));
  references = await Promise.all(
    inputs.map(async (input) => pixelsOf((await processImage(input.data, steps, { format: 'png' }, { maxPixels: 268_402_689, name: input.name })).data)),
  );
});
afterEach(killAll);

interface ClientTally {
  /** Answers 429, each with a Retry-After the client waited out. */
  saturated: number;
  /** Connection failures (the master was down); the client tried again. */
  unreachable: number;
}

/**
 * Posts one job as a well-behaved client does: on 429 it waits as Retry-After says, when the master
 * cannot be reached (restarting) it tries again shortly. Returns the id of the accepted (202) job.
 */
async function submitPolitely(url: string, input: { name: string; data: Buffer }, tally: ClientTally): Promise<string> {
  for (;;) {
    let response: Response;
    try {
      response = await postJob(url, [input], { pipeline, format: 'png' });
    } catch {
      tally.unreachable += 1;
      await sleep(200);
      continue;
    }
    if (response.status === 429) {
      tally.saturated += 1;
      const retryAfter = Number(response.headers.get('retry-after'));
      expect(retryAfter, 'Retry-After of a 429').toBeGreaterThan(0);
      expect((await parseResponse(errorBody, response)).error.code).toBe('saturated');
      await sleep(retryAfter * 1000);
      continue;
    }
    if (response.status !== 202) throw new Error(`POST /v1/jobs answered ${response.status}: ${await response.text()}`);
    return (await parseResponse(jobAccepted, response)).id;
  }
}

/** Waits for the job, downloads its result and checks it is the reference for its input. */
async function expectReferenceResult(url: string, id: string, input: number): Promise<void> {
  const job = await waitForJob(url, id);
  expect(job.status, JSON.stringify(job)).toBe('succeeded');
  const actual = await pixelsOf(await download(url, id, 0));
  const expected = references[input]!;
  expect({ ...actual, data: undefined }, `job ${id} (${inputs[input]!.name})`).toEqual({ ...expected, data: undefined });
  expect(actual.data.equals(expected.data), `job ${id} (${inputs[input]!.name}) differs from processImage`).toBe(true);
}

/** Counter values by label from the master's /metrics, e.g. {succeeded: 500}. */
async function countersByLabel(url: string, name: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(new RegExp(`^${name}\\{\\w+="([^"]+)"\\} (\\d+)$`, 'gm'))) counts[match[1]!] = Number(match[2]);
  return counts;
}

describe('load: 10 clients, 60 small jobs, a queue limit of 4 images', () => {
  it('every job succeeds exactly once with the reference pixels; a full queue answers 429 with Retry-After; master memory stays bounded', async () => {
    // More clients than queue places, so the limit is hit at once and keeps being hit.
    const clients = 10;
    const jobsPerClient = 6;
    const { master } = await startCluster({ workers: 2, dataDir: path.join(tmp, 'load'), env: { DIPS_MAX_QUEUED_IMAGES: '4' } });
    const tally: ClientTally = { saturated: 0, unreachable: 0 };
    const ids: string[] = [];

    const started = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, client) => {
        for (let j = 0; j < jobsPerClient; j++) {
          const input = (client * jobsPerClient + j) % distinctInputs;
          const id = await submitPolitely(master.url, inputs[input]!, tally);
          ids.push(id);
          await expectReferenceResult(master.url, id, input);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;

    expect(ids.length).toBe(clients * jobsPerClient);
    expect(new Set(ids).size, 'job ids are unique').toBe(ids.length);
    expect(tally.saturated, 'the queue limit was hit').toBeGreaterThan(0);
    expect(tally.unreachable, 'the master never dropped a connection').toBe(0);
    // The master's own count: each image finished once, each unit's result accepted once.
    expect(await countersByLabel(master.url, 'dips_images_total')).toEqual({ succeeded: ids.length });
    expect(await countersByLabel(master.url, 'dips_units_completed_total')).toEqual({ whole: ids.length });
    const memory = await memoryOf(master.child);
    expect(memory.peak).toBeLessThan(masterMemoryBound);
    console.info(
      `load drill: ${ids.length} jobs in ${seconds.toFixed(1)} s = ${(ids.length / seconds).toFixed(1)} jobs/s; ` +
        `${tally.saturated} answers 429; master peak RSS ${(memory.peak / 2 ** 20).toFixed(0)} MiB (now ${(memory.rss / 2 ** 20).toFixed(0)} MiB)`,
    );
  });
});

describe('faults under load', () => {
  it('worker SIGKILL, worker SIGSTOP/SIGCONT, master SIGKILL and restart: every accepted job yields the reference pixels', async () => {
    const dataDir = path.join(tmp, 'faults');
    const { master, workers } = await startCluster({ workers: 3, dataDir });
    const url = master.url;
    const tally: ClientTally = { saturated: 0, unreachable: 0 };
    const accepted: Array<{ id: string; input: number }> = [];
    let loadRunning = true;

    // Six clients keep jobs flowing until the drill is over; results are checked once all is done.
    const clients = Array.from({ length: 6 }, async (_, client) => {
      for (let n = client; loadRunning; n += 6) {
        const input = n % distinctInputs;
        accepted.push({ id: await submitPolitely(url, inputs[input]!, tally), input });
        await sleep(20);
      }
    });
    const completed = () => metric(url, 'dips_units_completed_total');

    await waitForWorker(url, workers[0]!.url, 'busy');
    workers[0]!.child.kill('SIGKILL');
    await waitForWorker(url, workers[0]!.url, 'dead');

    await waitForWorker(url, workers[1]!.url, 'busy');
    workers[1]!.child.kill('SIGSTOP');
    await waitForWorker(url, workers[1]!.url, 'dead');
    workers[1]!.child.kill('SIGCONT');
    await waitForWorker(url, workers[1]!.url, 'ready');
    // Both lost workers held units: they were sent again.
    expect(await metric(url, 'dips_retries_total')).toBeGreaterThan(0);

    const before = await completed();
    await waitUntil(completed, (done) => done >= before + 10, 30_000, 'more units to complete');
    master.child.kill('SIGKILL');
    await exited(master.child);
    const acceptedBeforeCrash = accepted.length;
    // Same port and data dir: the surviving workers heartbeat to it again and the clients reconnect.
    await startDips(['master', '--port', new URL(url).port, '--data-dir', dataDir]);
    await waitUntil(async () => accepted.length, (count) => count >= acceptedBeforeCrash + 10, 30_000, 'jobs accepted by the restarted master');
    loadRunning = false;
    await Promise.all(clients);

    expect(new Set(accepted.map((job) => job.id)).size, 'job ids are unique').toBe(accepted.length);
    for (const { id, input } of accepted) await expectReferenceResult(url, id, input);
    console.info(`fault drill: ${accepted.length} jobs accepted, all succeeded; ${tally.unreachable} connection failures while the master restarted`);
  });
});
