import fs from 'node:fs/promises';
import path from 'node:path';
import { type Browser } from 'playwright-core';
import { launchBrowser } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { killAll, startCluster, type DipsProcess } from '../helpers/processes.js';
import { submitBatch, tempDir, waitForBatch, writeImages } from './support.js';

let browser: Browser;
let master: DipsProcess;
let sources: string;
let destinations: string;

beforeAll(async () => {
  const tmp = await tempDir('batch-console');
  sources = path.join(tmp, 'in');
  destinations = path.join(tmp, 'out');
  await writeImages(sources, 6);
  await fs.writeFile(path.join(sources, 'set-0', 'img-4.png'), 'this is not a PNG');
  ({ master } = await startCluster({ workers: 1, dataDir: path.join(tmp, 'data'), env: { DIPS_SOURCES: `file://${sources}`, DIPS_DESTINATIONS: `file://${destinations}` } }));
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await killAll();
});

describe('console: the master\'s jobs', () => {
  test('lists a batch job submitted elsewhere, shows its failed item with the error, and retry finishes it', async () => {
    const body = { pipeline: [{ op: 'invert' }], inputs: { prefix: `file://${sources}` }, output: { prefix: `file://${destinations}`, format: 'png' } };
    const { id } = await submitBatch(master.url, body);
    expect((await waitForBatch(master.url, id)).status).toBe('partial');

    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${master.url}/`);
    const panel = page.getByRole('region', { name: 'All jobs on this master' });
    const row = panel.locator(`tr[data-job="${id}"]`);
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 15_000 }).toBe('partial');
    expect(await row.locator('td').allTextContents()).toEqual([id.slice(0, 8), 'batch', 'partial', '5', '1', '6', expect.stringMatching(/ago$/)]);

    await row.getByRole('button', { name: `Open job ${id}` }).click();
    const failed = panel.getByRole('table', { name: /Failed items/ });
    await expect.poll(() => failed.locator('tbody tr').count()).toBe(1);
    const cells = await failed.locator('tbody td').allTextContents();
    expect(cells[0]).toBe('set-0/img-4.png');
    expect(cells[1]).toMatch(/set-0\/img-4\.png: not an image/);
    expect(cells[2]).toBe('permanent');

    const [download] = await Promise.all([page.waitForEvent('download'), panel.getByRole('button', { name: 'Download manifest' }).click()]);
    const manifest = (await fs.readFile((await download.path())!, 'utf8')).trim().split('\n');
    expect(manifest).toHaveLength(6);

    await fs.copyFile(path.join(sources, 'set-0', 'img-3.png'), path.join(sources, 'set-0', 'img-4.png'));
    await panel.getByRole('button', { name: 'Retry failed items' }).click();
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 30_000 }).toBe('succeeded');
    await expect.poll(() => panel.locator('.master-job-status').textContent(), { timeout: 10_000 }).toBe('succeeded: 6 done, 0 failed, 6 in all');
    await expect(fs.access(path.join(destinations, 'set-0', 'img-4.png'))).resolves.toBeUndefined();
    expect(errors).toEqual([]);
    await context.close();
  });
});
