import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startS3Server } from '../../bench/s3-server.js';
import { JOB_DATA_CORS } from '../../services/storage/cors.js';
import { corpus, pixelsOf } from '../helpers/api.js';
import { launchBrowser } from '../helpers/browser.js';
import { killAll, runDips, type DipsProcess } from '../helpers/processes.js';
import { addStep, closePages, openConsole, startDips, waitForWorkers } from './console-page.js';

/** One 1.3 MP photo inverted on a shared 2-core machine: seconds, with room for a busy CI. */
const JOB_TIMEOUT_MS = 60_000;
const token = 'console-s3-secret';

let browser: Browser;
let scratch: string;
let s3: Awaited<ReturnType<typeof startS3Server>>;
let cluster: DipsProcess;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'dips-web-s3-'));
  // The bucket as the stack creates it: with lib/'s CORS rule.
  s3 = await startS3Server('dips-console', { cors: JOB_DATA_CORS });
  [browser, cluster] = await Promise.all([launchBrowser(), startDips(['up', '--workers', '1', '--port', '0', '--data-dir', path.join(scratch, 'data')], { ...s3.env, DIPS_TOKEN: token })]);
  await waitForWorkers(cluster.url, 1, token);
});

afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
  await killAll();
  await s3?.close();
  await rm(scratch, { recursive: true, force: true });
});

afterEach(closePages);

describe('console on a master with S3 storage and a token, as deployed', () => {
  test('the result, redirected to a presigned GET of the bucket, previews and downloads with the reference pixels', async () => {
    const reference = path.join(scratch, 'reference');
    const referenceRun = runDips(['process', corpus('aqua.jpg'), '--pipeline', '[{"op":"invert"}]', '--out', reference, '--format', 'png']);
    const page = await openConsole(browser, cluster, undefined, { token, storageOrigin: s3.endpoint });
    await page.locator('#file-input').setInputFiles([corpus('aqua.jpg')]);
    await addStep(page, 'invert');
    await page.getByLabel('Format').selectOption('png');
    const bucketAnswers: number[] = [];
    page.on('response', (response) => {
      if (response.url().startsWith(`${s3.endpoint}/`)) bucketAnswers.push(response.status());
    });
    await page.getByRole('button', { name: 'Process images' }).click();

    const job = page.locator('article.job').first();
    await expect.poll(() => job.locator('.job-head .badge').textContent(), { timeout: JOB_TIMEOUT_MS }).toBe('succeeded');
    const card = job.locator('.image-card', { hasText: 'aqua.jpg' });
    await expect.poll(() => card.locator('img').evaluateAll((images) => images.map((image) => (image as HTMLImageElement).naturalWidth))).toEqual([1400, 1400]);
    expect(await card.locator('.image-error').isVisible()).toBe(false);
    // The bytes came from the bucket, not through the master.
    expect(bucketAnswers).toContain(200);

    expect((await referenceRun).code).toBe(0);
    const downloadPromise = page.waitForEvent('download');
    await job.getByRole('button', { name: 'Download result of aqua.jpg' }).click();
    const download = await downloadPromise;
    expect(download.suggestedFilename()).toBe('aqua.png');
    const downloaded = path.join(scratch, 'aqua-from-console.png');
    await download.saveAs(downloaded);
    const [actual, expected] = await Promise.all([pixelsOf(downloaded), pixelsOf(path.join(reference, 'aqua.png'))]);
    expect({ ...actual, data: undefined }).toEqual({ ...expected, data: undefined });
    expect(actual.data.equals(expected.data)).toBe(true);
  });
});
