import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { corpus } from '../helpers/api.js';
import { accessibilityViolations, artifacts, closePages, type ConsoleCluster, NARROW, openConsole, startConsoleCluster } from './console-page.js';

/** One 1.3 MP photo resized on a shared 2-core machine: seconds, with room for a busy CI. */
const JOB_TIMEOUT_MS = 60_000;

/** The deployer's menu (DIPS_PRESETS_FILE): the only pipelines this master runs. */
const menu = {
  presets: [
    { name: 'thumbnail', description: 'A 320 px wide WebP thumbnail', pipeline: [{ op: 'resize', width: 320 }], format: 'webp' },
    { name: 'grey', pipeline: [{ op: 'grayscale' }] },
  ],
};

let setup: ConsoleCluster;

beforeAll(async () => {
  setup = await startConsoleCluster(async (scratch) => {
    const presetsFile = path.join(scratch, 'presets.json');
    await writeFile(presetsFile, JSON.stringify(menu));
    return { DIPS_PRESETS_ONLY: 'true', DIPS_PRESETS_FILE: presetsFile };
  });
});

afterAll(() => setup?.close());

afterEach(closePages);

describe('console on a master in presets-only mode', () => {
  test('only the preset picker is offered; a job without a preset is refused, one with a preset runs', async () => {
    const page = await openConsole(setup.browser, setup.cluster, NARROW);
    const picker = page.getByLabel('Preset', { exact: true });
    await expect.poll(() => picker.locator('option').allTextContents()).toEqual(['Choose a preset', 'grey', 'thumbnail']);
    expect(await page.locator('#presets-only-note').textContent()).toBe('This master runs only its presets: choose one.');
    // No step editor and no way to save a preset: the menu is the deployer's.
    expect(await page.getByLabel('Operation', { exact: true }).isVisible()).toBe(false);
    expect(await page.getByRole('button', { name: 'Add step' }).isVisible()).toBe(false);
    expect(await page.locator('#save-preset').isVisible()).toBe(false);

    await page.locator('#file-input').setInputFiles([corpus('dune.jpg')]);
    await page.getByRole('button', { name: 'Process images' }).click();
    await expect.poll(() => page.locator('#form-errors').textContent()).toBe('Please fix this before submitting:Choose a preset: this master runs only its presets.');
    expect(await picker.evaluate((select) => select === document.activeElement)).toBe(true);
    expect(await page.locator('article.job').count()).toBe(0);

    await picker.selectOption('thumbnail');
    expect(await page.locator('#preset-hint').textContent()).toBe('A 320 px wide WebP thumbnail — steps [{"op":"resize","width":320}]; output webp.');
    await page.getByRole('button', { name: 'Process images' }).click();
    const job = page.locator('article.job').first();
    await expect.poll(() => job.locator('.job-head .badge').textContent(), { timeout: JOB_TIMEOUT_MS }).toBe('succeeded');
    expect(await job.locator('.job-meta').textContent()).toMatch(/^preset thumbnail \(resize \(width 320\)\) · output webp · 1 image/);
    const downloadPromise = page.waitForEvent('download');
    await job.getByRole('button', { name: 'Download result of dune.jpg' }).click();
    const result = await sharp(await (await downloadPromise).path()).metadata();
    expect({ format: result.format, width: result.width }).toEqual({ format: 'webp', width: 320 });

    // The 390 px layout holds: nothing wider than the screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(NARROW.width);
    await page.screenshot({ path: path.join(artifacts, 'presets-only-narrow.png'), fullPage: true });
    const violations = await accessibilityViolations(page);
    expect(violations, violations.join('\n')).toEqual([]);
  });
});
