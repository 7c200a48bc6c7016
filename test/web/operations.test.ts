import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { corpus, pixelsOf } from '../helpers/api.js';
import { runDips, type DipsProcess } from '../helpers/processes.js';
import { operationList } from '../../services/protocol/newcomer.js';
import { accessibilityViolations, addStep, artifacts, closePages, type ConsoleCluster, DESKTOP, NARROW, openConsole as openPage, startConsoleCluster } from './console-page.js';
import { jobWithImages, parseResponse } from '../../services/protocol/api.js';
import { duplicatesReport, preset } from '../../services/protocol/presets.js';

/** One 1.3 MP photo through a few steps on a shared 2-core machine: seconds, with room for a busy CI. */
const JOB_TIMEOUT_MS = 60_000;

let setup: ConsoleCluster;
let cluster: DipsProcess;
let scratch: string;

beforeAll(async () => {
  setup = await startConsoleCluster();
  ({ cluster, scratch } = setup);
});

afterAll(() => setup?.close());

afterEach(closePages);

const openConsole = (viewport = DESKTOP): Promise<Page> => openPage(setup.browser, cluster, viewport);

/** GET /v1/operations as the master serves it, through the one schema of that answer. */
async function servedOperations() {
  return operationList.parse(await (await fetch(`${cluster.url}/v1/operations`)).json()).operations;
}

/** A flat colour as PNG with alpha, or JPEG: overlays small enough to pass on a command line too. */
const swatch = (width: number, height: number, rgb: [number, number, number], format: 'png' | 'jpeg') =>
  sharp({ create: { width, height, channels: format === 'png' ? 4 : 3, background: { r: rgb[0], g: rgb[1], b: rgb[2], alpha: 1 } } })[format]().toBuffer();

const dataUrl = (bytes: Buffer, type: string) => `data:${type};base64,${bytes.toString('base64')}`;

/** The step card of step `index` (1-based) in the editor. */
const stepCard = (page: Page, index: number) => page.locator('#step-list > li').nth(index - 1);

describe('console: the operations of GET /v1/operations', () => {
  test('every served operation is offered with one input per parameter of its schema', async () => {
    const catalogue = await servedOperations();
    const page = await openConsole();
    const picker = page.getByLabel('Operation', { exact: true });
    await expect.poll(() => picker.locator('option').allTextContents()).toEqual(catalogue.map((op) => op.name));
    // All of them added in one go through the picker and the button (one by one takes 29 round trips).
    await page.evaluate((names) => {
      const select = document.querySelector<HTMLSelectElement>('#op-picker')!;
      for (const name of names) {
        select.value = name;
        document.querySelector<HTMLButtonElement>('#add-step')!.click();
      }
    }, catalogue.map((op) => op.name));
    // Each step's title and parameter labels (the label's text after its screen-reader prefix).
    const shown = await page.locator('#step-list > li').evaluateAll((steps) => steps.map((step) => [
      step.querySelector('.step-title')!.textContent,
      Array.from(step.querySelectorAll('.param > label'), (label) => label.lastChild!.textContent),
    ]));
    expect(shown).toEqual(catalogue.map((op, index) => [`${index + 1}. ${op.name}`, Object.keys((op.params as { properties?: object }).properties ?? {})]));
    // The schema decides the control: a file input for an image data URL, a colour picker for #rrggbb.
    const composite = stepCard(page, catalogue.findIndex((op) => op.name === 'composite') + 1);
    expect(await composite.getByLabel('image').getAttribute('type')).toBe('file');
    expect(await composite.getByLabel('image').getAttribute('accept')).toBe('image/png,image/jpeg,image/webp,image/gif,image/avif,image/tiff');
    expect(await composite.getByLabel('gravity').locator('option').count()).toBe(10);
    const textStep = catalogue.findIndex((op) => op.name === 'text') + 1;
    const text = stepCard(page, textStep);
    expect(await text.getByLabel('colour').getAttribute('type')).toBe('color');
    // Free text may hold line breaks (the text op draws one line per line).
    expect(await text.getByLabel(`Step ${textStep} (text): text`, { exact: true }).evaluate((input) => input.tagName)).toBe('TEXTAREA');
    await page.setViewportSize(NARROW);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(NARROW.width);
  });

  test('two uploaded overlays: a too-large file is refused, the result carries both watermarks, pixel for pixel', async () => {
    const red = await swatch(40, 30, [255, 0, 0], 'png');
    const blue = await swatch(24, 24, [0, 0, 255], 'jpeg');
    // Noise does not compress: well over the 1 MB the composite schema allows for the overlay.
    const noise = await sharp(Buffer.from(Array.from({ length: 800 * 800 * 3 }, (_, i) => (i * 7919) % 251)), { raw: { width: 800, height: 800, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
    expect(noise.length).toBeGreaterThan(1_100_000);

    const page = await openConsole();
    await page.locator('#file-input').setInputFiles([corpus('ladybird.jpg')]);
    await addStep(page, 'composite');
    await addStep(page, 'composite');
    const first = stepCard(page, 1);
    const second = stepCard(page, 2);

    await first.getByLabel('image').setInputFiles({ name: 'noise.png', mimeType: 'image/png', buffer: noise });
    await expect.poll(() => first.locator('.field-error:not([hidden])').textContent()).toBe(`image must be at most 1.0 MB (noise.png is ${(noise.length / 1024 / 1024).toFixed(1)} MB)`);
    expect(await first.getByLabel('image').getAttribute('aria-invalid')).toBe('true');
    await page.screenshot({ path: path.join(artifacts, 'overlay-too-large-desktop.png'), fullPage: true });

    await first.getByLabel('image').setInputFiles({ name: 'red.png', mimeType: 'image/png', buffer: red });
    await expect.poll(() => first.locator('.overlay-caption').textContent()).toBe(`red.png · 40 × 30 · ${red.length} B`);
    expect(await first.locator('.field-error:not([hidden])').count()).toBe(0);
    expect(await first.locator('.overlay-thumbnail').evaluate((image: HTMLImageElement) => image.naturalWidth)).toBe(40);
    await first.getByLabel('gravity').selectOption('northwest');
    await first.getByLabel('margin').fill('0');

    await second.getByLabel('image').setInputFiles({ name: 'blue.jpg', mimeType: 'image/jpeg', buffer: blue });
    await expect.poll(() => second.locator('.overlay-caption').textContent()).toMatch(/^blue\.jpg · 24 × 24 · /);
    await second.getByLabel('opacity').fill('0.5');
    await second.getByLabel('tile').check();

    const pipeline = [
      { op: 'composite', image: dataUrl(red, 'image/png'), gravity: 'northwest', margin: 0, opacity: 1, tile: false },
      { op: 'composite', image: dataUrl(blue, 'image/jpeg'), gravity: 'southeast', margin: 16, opacity: 0.5, tile: true },
    ];
    // The JSON preview shortens the data URLs (they run to a megabyte) and says so.
    await expect.poll(async () => JSON.parse((await page.locator('#pipeline-preview').textContent())!)[0].image).toBe(`${pipeline[0]!.image.slice(0, 40)}…(${pipeline[0]!.image.length} characters)`);
    await page.locator('.pipeline-json summary').click();
    expect(await page.locator('#pipeline-preview-note').isVisible()).toBe(true);
    await page.getByLabel('Format').selectOption('png');
    const reference = path.join(scratch, 'overlay-reference');
    const referenceDone = runDips(['process', corpus('ladybird.jpg'), '--pipeline', JSON.stringify(pipeline), '--out', reference, '--format', 'png']);
    await page.getByRole('button', { name: 'Process images' }).click();

    const job = page.locator('article.job').first();
    await expect.poll(() => job.locator('.job-head .badge').textContent(), { timeout: JOB_TIMEOUT_MS }).toBe('succeeded');
    expect(await job.locator('.job-meta').textContent()).toMatch(/^composite \(image "data:image\/png;base64,.{18}…\(\d+ characters\)", gravity "northwest"/);
    const downloadPromise = page.waitForEvent('download');
    await job.getByRole('button', { name: 'Download result of ladybird.jpg' }).click();
    const downloaded = path.join(scratch, 'ladybird-watermarked.png');
    await (await downloadPromise).saveAs(downloaded);

    const result = await pixelsOf(downloaded);
    const original = await pixelsOf(corpus('ladybird.jpg'));
    const at = (image: typeof result, x: number, y: number) => [...image.data.subarray((y * image.width + x) * image.channels, (y * image.width + x) * image.channels + 3)];
    // The red overlay covers the top-left 40×30 at full opacity (and the blue tiles over it, half-transparent).
    expect(at(result, 0, 0)[0]).toBeGreaterThan(120);
    expect(at(result, 0, 0)[1]).toBeLessThan(10);
    // Outside the red, the tiled blue at 0.5 opacity: blue half of 255 over the photo's own pixel.
    const [x, y] = [700, 500];
    const photo = at(original, x, y);
    const blended = at(result, x, y);
    for (const [channel, overlay] of [0, 0, 255].entries()) expect(Math.abs(blended[channel]! - (photo[channel]! + overlay) / 2), `channel ${channel}`).toBeLessThanOrEqual(3);
    const referenceRun = await referenceDone;
    expect(referenceRun.code, referenceRun.stderr).toBe(0);
    const expected = await pixelsOf(path.join(reference, 'ladybird.png'));
    expect({ ...result, data: undefined }).toEqual({ ...expected, data: undefined });
    expect(result.data.equals(expected.data)).toBe(true);

    await page.screenshot({ path: path.join(artifacts, 'overlay-job-desktop.png'), fullPage: true });
    expect(await accessibilityViolations(page)).toEqual([]);
    await page.setViewportSize(NARROW);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(NARROW.width);
    await page.screenshot({ path: path.join(artifacts, 'overlay-job-narrow.png'), fullPage: true });
  });
});

describe('console: annotations and the duplicates report', () => {
  test('phash, thumbhash and metadata of three photos are shown per image, GPS flagged; the near-duplicates are grouped', async () => {
    // A re-encoded, slightly smaller copy of aqua.jpg carrying a GPS location: a near-duplicate with a privacy issue.
    const copy = await sharp(corpus('aqua.jpg'))
      .resize({ width: 1200 })
      .withExif({ IFD0: { Make: 'DIPS' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1', GPSLongitudeRef: 'W', GPSLongitude: '0/1 7/1 30/1' } })
      .jpeg({ quality: 80 })
      .toBuffer();
    const page = await openConsole();
    const file = async (name: string) => ({ name, mimeType: 'image/jpeg', buffer: await readFile(corpus(name)) });
    await page.locator('#file-input').setInputFiles([await file('aqua.jpg'), { name: 'aqua-copy.jpg', mimeType: 'image/jpeg', buffer: copy }, await file('storm.jpg')]);
    for (const op of ['phash', 'thumbhash', 'metadata']) await addStep(page, op);
    await page.getByRole('button', { name: 'Process images' }).click();
    const job = page.locator('article.job').first();
    await expect.poll(() => job.locator('.job-head .badge').textContent(), { timeout: JOB_TIMEOUT_MS }).toBe('succeeded');
    const id = (await job.getAttribute('data-job-id'))!;
    const view = await parseResponse(jobWithImages, await fetch(`${cluster.url}/v1/jobs/${id}`));

    for (const image of view.images) {
      const card = job.locator('.image-card', { has: page.locator('.image-name', { hasText: new RegExp(`^${image.name}$`) }) });
      expect(image.annotations?.phash).toMatch(/^[0-9a-f]{16}$/);
      await expect.poll(() => card.locator('[data-annotation="phash"] code').textContent()).toBe(image.annotations!.phash);
      expect(await card.locator('[data-annotation="thumbhash"] code').textContent()).toBe(image.annotations!.thumbhash);
      // The placeholder decodes to the photo's shape and colours: its mean is near the photo's.
      const placeholder = card.getByRole('img', { name: `ThumbHash placeholder of ${image.name}` });
      const drawn = await placeholder.evaluate(async (img: HTMLImageElement) => {
        await img.decode();
        const canvas = Object.assign(document.createElement('canvas'), { width: img.naturalWidth, height: img.naturalHeight });
        const context = canvas.getContext('2d')!;
        context.drawImage(img, 0, 0);
        const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
        const mean = [0, 1, 2].map((channel) => data.filter((_, i) => i % 4 === channel).reduce((sum, value) => sum + value, 0) / (data.length / 4));
        return { width: img.naturalWidth, height: img.naturalHeight, mean };
      });
      const photo = image.name === 'aqua-copy.jpg' ? copy : corpus(image.name);
      const { width, height } = await sharp(photo).metadata();
      expect(drawn.width / drawn.height).toBeCloseTo(width / height, 0);
      const { channels } = await sharp(photo).stats();
      for (const [channel, stats] of channels.slice(0, 3).entries()) expect(Math.abs(drawn.mean[channel]! - stats.mean), `${image.name} channel ${channel}`).toBeLessThan(25);

      const metadata = card.getByRole('table', { name: 'Metadata' });
      const cell = (name: string) => metadata.locator('tr', { has: page.locator('th', { hasText: new RegExp(`^${name}$`) }) }).locator('td');
      expect(await cell('format').textContent()).toBe('jpeg');
      expect(await cell('size').textContent()).toBe(`${width} × ${height}`);
      const gps = metadata.locator('tr[data-field="gps"]');
      if (image.name === 'aqua-copy.jpg') {
        expect(await gps.locator('td').textContent()).toBe('location in file 51.50000, -0.12500');
        expect(await gps.getAttribute('class')).toBe('gps-flag');
      } else {
        expect(await gps.locator('td').textContent()).toBe('none');
      }
    }

    const report = await parseResponse(duplicatesReport, await fetch(`${cluster.url}/v1/jobs/${id}/duplicates`));
    expect(report.groups.map((group) => group.items.map((item) => item.name).sort())).toEqual([['aqua-copy.jpg', 'aqua.jpg']]);
    const duplicates = job.locator('.duplicates');
    await expect.poll(() => duplicates.locator('h4').textContent()).toBe(`Near-duplicates (phash within ${report.threshold} bits)`);
    expect(await duplicates.locator('.duplicate-groups > li').count()).toBe(1);
    expect((await duplicates.locator('.duplicate-name').allTextContents()).sort()).toEqual(['aqua-copy.jpg', 'aqua.jpg']);

    // The jobs column scrolls on its own beside the form: a tall window shows the whole card.
    await page.setViewportSize({ width: DESKTOP.width, height: 2000 });
    await job.screenshot({ path: path.join(artifacts, 'annotations-desktop.png') });
    await page.setViewportSize(DESKTOP);
    expect(await accessibilityViolations(page)).toEqual([]);
    await page.setViewportSize(NARROW);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(NARROW.width);
    await job.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(artifacts, 'annotations-narrow.png'), fullPage: true });
  });
});

describe('console: presets and output options', () => {
  test('the steps and output options are saved as a preset, a job runs by the preset, then it is replaced and deleted', async () => {
    const page = await openConsole();
    await addStep(page, 'invert');
    await page.getByLabel('Format').selectOption('jpeg');
    await page.getByLabel('Output option: progressive').check();
    await page.getByLabel('Output option: chromaSubsampling').selectOption('4:4:4');
    await page.locator('#save-preset summary').click();
    await page.getByLabel('Preset name').fill('negative-444');
    await page.getByLabel('Description').fill('Negative, progressive, full colour resolution');
    await page.getByRole('button', { name: 'Save preset' }).click();
    await expect.poll(() => page.locator('#save-preset-status').textContent()).toBe('Preset negative-444 saved: choose it above to run it.');
    const stored = await parseResponse(preset, await fetch(`${cluster.url}/v1/presets/negative-444`));
    expect(stored).toMatchObject({ name: 'negative-444', pipeline: [{ op: 'invert' }], format: 'jpeg', options: { progressive: true, chromaSubsampling: '4:4:4' }, description: 'Negative, progressive, full colour resolution' });

    // Choosing the preset replaces the step editor; the form's output settings are left at their defaults.
    const picker = page.getByLabel('Preset', { exact: true });
    await picker.selectOption('negative-444');
    expect(await page.locator('#pipeline-builder').isHidden()).toBe(true);
    expect(await page.locator('#preset-hint').textContent()).toBe('Negative, progressive, full colour resolution — steps [{"op":"invert"}]; output jpeg, progressive true, chromaSubsampling "4:4:4".');
    await page.getByLabel('Format').selectOption('');
    await page.getByLabel('Output option: progressive').uncheck();
    await page.getByLabel('Output option: chromaSubsampling').selectOption('4:2:0');
    await page.locator('#file-input').setInputFiles([corpus('wood.jpg')]);
    await page.getByRole('button', { name: 'Process images' }).click();
    const job = page.locator('article.job').first();
    await expect.poll(() => job.locator('.job-head .badge').textContent(), { timeout: JOB_TIMEOUT_MS }).toBe('succeeded');
    expect(await job.locator('.job-meta').textContent()).toMatch(/^preset negative-444 \(invert\) · output jpeg \(progressive true, chromaSubsampling "4:4:4"\) · 1 image/);
    const downloadPromise = page.waitForEvent('download');
    await job.getByRole('button', { name: 'Download result of wood.jpg' }).click();
    const download = await downloadPromise;
    expect(download.suggestedFilename()).toBe('wood.jpg');
    const result = await sharp(await download.path()).metadata();
    expect({ format: result.format, isProgressive: result.isProgressive, chromaSubsampling: result.chromaSubsampling }).toEqual({ format: 'jpeg', isProgressive: true, chromaSubsampling: '4:4:4' });
    await page.screenshot({ path: path.join(artifacts, 'preset-job-desktop.png'), fullPage: true });
    expect(await accessibilityViolations(page)).toEqual([]);

    // Saving under the same name replaces it; deleting removes it from the master and the picker.
    await picker.selectOption('');
    await page.getByRole('button', { name: 'Save preset' }).click();
    await expect.poll(() => page.locator('#save-preset-status').textContent()).toBe('Preset negative-444 replaced: choose it above to run it.');
    await picker.selectOption('negative-444');
    await page.getByRole('button', { name: 'Delete preset negative-444' }).click();
    await expect.poll(() => picker.locator('option').allTextContents()).toEqual(['None: build the pipeline below']);
    expect((await fetch(`${cluster.url}/v1/presets/negative-444`)).status).toBe(404);
  });
});
