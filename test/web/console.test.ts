import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type Page, type Request } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { corpus, pixelsOf, unzip } from '../helpers/api.js';
import { launchBrowser } from '../helpers/browser.js';
import { killAll, runDips, type DipsProcess } from '../helpers/processes.js';
import { clusterAnswer, operationList } from '../../services/protocol/newcomer.js';
import { accessibilityViolations, addStep, artifacts, closePages, DESKTOP, NARROW, openConsole as openPage, startDips, waitForWorkers } from './console-page.js';
import { jobView, jobWithImages, parseResponse } from '../../services/protocol/api.js';
import { signWebhook } from '../../services/master/webhooks.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';

/** Processing two 1.3 MP photos on a shared 2-core machine: seconds, with room for a busy CI. */
const JOB_TIMEOUT_MS = 60_000;

let browser: Browser;
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'dips-web-'));
  await mkdir(artifacts, { recursive: true });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await killAll();
  await rm(scratch, { recursive: true, force: true });
});

afterEach(closePages);

const openConsole = (master: DipsProcess, viewport = DESKTOP): Promise<Page> => openPage(browser, master, viewport);

/** A 2x2 24-bit BMP: an image format browsers decode and the master does not. */
function tinyBmp(): Buffer {
  const rowBytes = 8;
  const bmp = Buffer.alloc(54 + rowBytes * 2);
  bmp.fill(200, 54);
  bmp.write('BM', 0);
  bmp.writeUInt32LE(bmp.length, 2);
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(2, 18);
  bmp.writeInt32LE(2, 22);
  bmp.writeUInt16LE(1, 26);
  bmp.writeUInt16LE(24, 28);
  bmp.writeUInt32LE(0, 30);
  bmp.writeUInt32LE(rowBytes * 2, 34);
  return bmp;
}

const pipelinePreview = (page: Page) => page.locator('#pipeline-preview').textContent();
const focusedLabel = (page: Page) => page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? document.activeElement?.textContent);

describe('console on a local cluster (dips up, 2 workers)', () => {
  let cluster: DipsProcess;

  beforeAll(async () => {
    cluster = await startDips(['up', '--workers', '2', '--port', '0', '--data-dir', path.join(scratch, 'open')]);
    await waitForWorkers(cluster.url, 2);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  test('blur then grayscale on two photos: progress reaches 100% and the downloads are the reference pixels', async () => {
    const pipeline = [{ op: 'blur', sigma: 2.5 }, { op: 'grayscale' }];
    const reference = path.join(scratch, 'reference');
    const referenceDone = runDips(['process', corpus('aqua.jpg'), corpus('storm.jpg'), '--pipeline', JSON.stringify(pipeline), '--out', reference, '--format', 'png']);

    const page = await openConsole(cluster);
    // Where the images' bytes go: each file to the storage service's signed URL, none to the master.
    const sent: Request[] = [];
    page.on('requestfinished', (request) => {
      if (request.method() === 'PUT' || request.method() === 'POST') sent.push(request);
    });
    await page.locator('#file-input').setInputFiles([corpus('aqua.jpg'), corpus('storm.jpg')]);
    await expect.poll(() => page.getByRole('list', { name: 'Chosen images' }).getByRole('listitem').count()).toBe(2);
    await addStep(page, 'blur');
    await page.getByLabel('sigma').fill('2.5');
    await addStep(page, 'grayscale');
    await expect.poll(() => page.locator('#pipeline-preview').textContent()).toBe(JSON.stringify(pipeline));
    await page.getByLabel('Format').selectOption('png');
    await page.getByRole('button', { name: 'Process images' }).click();

    const job = page.locator('article.job').first();
    await expect.poll(() => job.getByRole('progressbar').getAttribute('aria-valuenow'), { timeout: JOB_TIMEOUT_MS }).toBe('100');
    await expect.poll(() => job.locator('.job-head .badge').textContent()).toBe('succeeded');
    await expect.poll(() => job.locator('.image-card[data-status="succeeded"]').count()).toBe(2);
    await expect.poll(() => job.locator('.progress-text').textContent()).toBe('2 of 2 images done · 100%');
    const sizes = await Promise.all(['aqua.jpg', 'storm.jpg'].map(async (name) => (await stat(corpus(name))).size));
    const sends = await Promise.all(
      sent.map(async (request) => {
        const url = new URL(request.url());
        const bytes = Number((await request.allHeaders())['content-length']);
        return `${request.method()} ${url.origin === cluster.storageUrl ? 'storage' : url.pathname.replace(/[0-9a-f-]{36}/, '<id>')} ${bytes > 10_000 ? bytes : '(json)'}`;
      }),
    );
    expect(sends.sort()).toEqual(
      ['POST /v1/uploads (json)', 'POST /v1/uploads/<id>/job (json)', ...sizes.map((size) => `PUT storage ${size}`)].sort(),
    );

    // The before/after view shows the picked original and the processed result, both decoded.
    const slider = job.getByRole('slider', { name: /Before\/after split for aqua\.jpg/ });
    await expect.poll(() => slider.isVisible()).toBe(true);
    const aquaCard = job.locator('.image-card', { hasText: 'aqua.jpg' });
    await expect.poll(() => aquaCard.locator('img').evaluateAll((images) => images.map((image) => (image as HTMLImageElement).naturalWidth > 0))).toEqual([true, true]);
    await slider.press('End');
    expect(await aquaCard.locator('.compare').getAttribute('style')).toBe('--split: 100%;');
    await slider.press('Home');
    expect(await aquaCard.locator('.compare').getAttribute('style')).toBe('--split: 0%;');
    await page.screenshot({ path: path.join(artifacts, 'job-desktop.png'), fullPage: true });
    expect(await accessibilityViolations(page)).toEqual([]);

    const compareButton = job.getByRole('button', { name: 'Compare aqua.jpg before and after, large' });
    await compareButton.click();
    const dialog = page.getByRole('dialog', { name: 'aqua.jpg' });
    await expect.poll(() => dialog.isVisible()).toBe(true);
    await expect.poll(() => dialog.locator('img').evaluateAll((images) => images.map((image) => (image as HTMLImageElement).naturalWidth))).toEqual([1400, 1400]);
    await page.screenshot({ path: path.join(artifacts, 'compare-desktop.png') });
    await page.keyboard.press('Escape');
    await expect.poll(() => dialog.isVisible()).toBe(false);
    expect(await compareButton.evaluate((button) => button === document.activeElement)).toBe(true);
    await page.setViewportSize(NARROW);
    await page.screenshot({ path: path.join(artifacts, 'job-narrow.png'), fullPage: true });
    expect(await accessibilityViolations(page)).toEqual([]);
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: path.join(artifacts, 'job-narrow-dark.png'), fullPage: true });
    expect(await accessibilityViolations(page)).toEqual([]);
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize(DESKTOP);

    const referenceRun = await referenceDone;
    expect(referenceRun.code, referenceRun.stderr).toBe(0);
    const downloadPromise = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download result of storm.jpg' }).click();
    const download = await downloadPromise;
    expect(download.suggestedFilename()).toBe('storm.png');
    const downloaded = path.join(scratch, 'storm-from-console.png');
    await download.saveAs(downloaded);
    const expected = await pixelsOf(path.join(reference, 'storm.png'));
    const actual = await pixelsOf(downloaded);
    expect({ ...actual, data: undefined }).toEqual({ ...expected, data: undefined });
    expect((await sharp(downloaded).metadata()).channels).toBe(1);
    expect(actual.data.equals(expected.data)).toBe(true);

    const archivePromise = page.waitForEvent('download');
    await job.getByRole('button', { name: 'Download all (.zip)' }).click();
    const archive = path.join(scratch, 'all.zip');
    await (await archivePromise).saveAs(archive);
    const entries = await unzip(await readFile(archive));
    expect([...entries.keys()].sort()).toEqual(['aqua.png', 'storm.png']);
    for (const name of ['aqua.png', 'storm.png']) {
      const fromZip = await pixelsOf(entries.get(name)!);
      const fromReference = await pixelsOf(path.join(reference, name));
      expect(fromZip.data.equals(fromReference.data)).toBe(true);
    }

    // The throughput chart counted both images (from the master's /metrics).
    await expect.poll(() => page.locator('.chart-caption').textContent(), { timeout: 10_000 }).toMatch(/^2 images finished since this page started counting \(1 min\), 2 of them in the last minute \(all clients: the master's \/metrics counter, sampled by this page\)\.$/);

    // The job list comes back after a reload, refreshed from the master.
    const jobId = await job.getAttribute('data-job-id');
    await page.reload();
    const restored = page.locator(`article.job[data-job-id="${jobId}"]`);
    await expect.poll(() => restored.locator('.job-head .badge').textContent()).toBe('succeeded');
    await expect.poll(() => restored.locator('.progress-text').textContent()).toBe('2 of 2 images done · 100%');
    await expect.poll(() => restored.locator('.image-card .image-name').allTextContents()).toEqual(['aqua.jpg', 'storm.jpg']);
  });

  test('steps are added, reordered and removed from the keyboard; dropped images are listed, other files refused', async () => {
    const page = await openConsole(cluster);
    const picker = page.getByLabel('Operation', { exact: true });
    const addButton = page.getByRole('button', { name: 'Add step' });
    await expect.poll(() => picker.locator('option').count()).toBeGreaterThan(3);
    await picker.selectOption('blur');
    await picker.press('Tab');
    expect(await focusedLabel(page)).toBe('Add step');
    expect(await addButton.evaluate((button) => getComputedStyle(button).outlineStyle)).toBe('solid');
    await page.keyboard.press('Enter');
    // Focus lands on the new step's first parameter, ready for typing, filled from the catalogue.
    const sigma = page.getByLabel('sigma');
    expect(await sigma.evaluate((input) => input === document.activeElement)).toBe(true);
    const { operations } = operationList.parse(await (await fetch(`${cluster.url}/v1/operations`)).json());
    const blurParams = operations.find((op) => op.name === 'blur')!.params as { properties: Record<string, { default: number; minimum: number; maximum: number; description: string }> };
    const sigmaSchema = blurParams.properties.sigma!;
    expect(await sigma.evaluate((input: HTMLInputElement) => [Number(input.value), Number(input.min), Number(input.max)])).toEqual([sigmaSchema.default, sigmaSchema.minimum, sigmaSchema.maximum]);
    expect(await page.locator(`#${await sigma.getAttribute('id')}-hint`).textContent()).toContain(sigmaSchema.description);
    for (const operation of ['grayscale', 'invert']) {
      await picker.selectOption(operation);
      await addButton.press('Enter');
    }
    expect(await pipelinePreview(page)).toBe('[{"op":"blur","sigma":2},{"op":"grayscale"},{"op":"invert"}]');

    await page.getByRole('button', { name: 'Move step 3 (invert) up' }).press('Enter');
    expect(await pipelinePreview(page)).toBe('[{"op":"blur","sigma":2},{"op":"invert"},{"op":"grayscale"}]');
    expect(await focusedLabel(page)).toBe('Move step 2 (invert) up');
    await page.keyboard.press('Enter');
    expect(await pipelinePreview(page)).toBe('[{"op":"invert"},{"op":"blur","sigma":2},{"op":"grayscale"}]');
    // At the top "up" is disabled, so focus stays on the step, on its "down" button.
    expect(await focusedLabel(page)).toBe('Move step 1 (invert) down');
    await page.getByRole('button', { name: 'Remove step 2 (blur)' }).press('Enter');
    expect(await pipelinePreview(page)).toBe('[{"op":"invert"},{"op":"grayscale"}]');
    expect(await page.locator('.step-title').allTextContents()).toEqual(['1. invert', '2. grayscale']);

    const photoBytes = (await readFile(corpus('freshflower.jpg'))).toString('base64');
    const dataTransfer = await page.evaluateHandle((base64) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], 'freshflower.jpg', { type: 'image/jpeg' }));
      transfer.items.add(new File(['just text'], 'notes.txt', { type: 'text/plain' }));
      return transfer;
    }, photoBytes);
    await page.locator('#drop-zone').dispatchEvent('drop', { dataTransfer });
    expect(await page.getByRole('list', { name: 'Chosen images' }).locator('.file-name').allTextContents()).toEqual(['freshflower.jpg']);
    expect(await page.locator('#file-message').textContent()).toBe('Not added, not an image: notes.txt');
    await page.setViewportSize(NARROW);
    await page.screenshot({ path: path.join(artifacts, 'pipeline-narrow.png'), fullPage: true });
  });

  test('a parameter out of range is refused before submitting, with a message naming it', async () => {
    const page = await openConsole(cluster);
    await page.locator('#file-input').setInputFiles([corpus('wood.jpg')]);
    await addStep(page, 'blur');
    const sigma = page.getByLabel('sigma');
    await sigma.fill('500');
    await page.getByRole('button', { name: 'Process images' }).click();

    const message = 'sigma must be between 0.3 and 100 (500 is too large)';
    await expect.poll(() => page.locator('.step .field-error').textContent()).toBe(message);
    const summary = page.locator('#form-errors');
    expect(await summary.getAttribute('role')).toBe('alert');
    await expect.poll(() => summary.textContent()).toContain(`Step 1 (blur): ${message}`);
    expect(await sigma.getAttribute('aria-invalid')).toBe('true');
    expect(await sigma.evaluate((input) => input === document.activeElement)).toBe(true);
    expect(await page.locator('article.job').count()).toBe(0);
    await page.screenshot({ path: path.join(artifacts, 'bad-parameter-desktop.png'), fullPage: true });
    expect(await accessibilityViolations(page)).toEqual([]);

    await sigma.fill('3');
    await expect.poll(() => page.locator('.step .field-error').isHidden()).toBe(true);
  });

  test('an upload the browser decodes but the master cannot shows the master\'s error naming the file', async () => {
    // A BMP: Chromium decodes it (so it is not flagged), libvips has no BMP loader (so the master refuses it).
    const page = await openConsole(cluster);
    await page.locator('#file-input').setInputFiles([{ name: 'tiny.bmp', mimeType: 'image/bmp', buffer: tinyBmp() }]);
    await addStep(page, 'invert');
    await page.getByRole('button', { name: 'Process images' }).click();
    await expect.poll(() => page.locator('#form-errors').textContent()).toMatch(/The master did not accept the job: .*tiny\.bmp[^]*\(HTTP 4\d\d\)$/);
  });

  test('without the event stream the console polls; texts decoded by the qr step are shown on the image card', async () => {
    const page = await openConsole(cluster);
    let refusedStreams = 0;
    await page.route('**/v1/jobs/*/events', (route) => {
      refusedStreams += 1;
      return route.abort('connectionrefused');
    });
    await page.locator('#file-input').setInputFiles([corpus('qr-on-photo.jpg')]);
    await addStep(page, 'qr');
    await page.getByRole('button', { name: 'Process images' }).click();
    const job = page.locator('article.job').first();
    await expect.poll(() => job.locator('.job-head .badge').textContent(), { timeout: JOB_TIMEOUT_MS }).toBe('succeeded');
    const state = await parseResponse(jobWithImages, await fetch(`${cluster.url}/v1/jobs/${await job.getAttribute('data-job-id')}`));
    const texts = state.images[0]!.qr ?? [];
    expect(texts.length).toBeGreaterThan(0);
    await expect.poll(() => job.locator('.qr-list li').allTextContents()).toEqual(texts);
    expect(refusedStreams).toBe(1);
    await page.screenshot({ path: path.join(artifacts, 'qr-desktop.png'), fullPage: true });
  });

  test('upload progress is shown while the images are sent, and cancelling it submits nothing', async () => {
    const page = await openConsole(cluster);
    // Chromium's own network throttling: about 5 s to send the three photos, so progress can be seen and cancelled.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
    await page.locator('#file-input').setInputFiles([corpus('twowings-4k.jpg'), corpus('dune.jpg'), corpus('wood.jpg')]);
    await addStep(page, 'invert');
    await page.getByRole('button', { name: 'Process images' }).click();
    const text = page.locator('#upload-text');
    await expect.poll(() => text.textContent(), { timeout: 20_000 }).toMatch(/^Uploading 3 images: ([1-9]|[1-8]\d)% \([\d.]+ (kB|MB) of 1\.4 MB\)$/);
    const percent = Number((await page.locator('#upload-bar').evaluate((bar) => (bar as HTMLProgressElement).value)));
    expect(percent).toBeGreaterThan(0);
    expect(percent).toBeLessThan(100);
    await page.screenshot({ path: path.join(artifacts, 'upload-progress-desktop.png') });
    await page.getByRole('button', { name: 'Cancel upload' }).click();
    await expect.poll(() => page.locator('#submit-status').textContent()).toBe('Upload cancelled: nothing was submitted.');
    expect(await page.locator('#upload-progress').isHidden()).toBe(true);
    expect(await page.locator('article.job').count()).toBe(0);

    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await page.getByRole('button', { name: 'Process images' }).click();
    const job = page.locator('article.job').first();
    await expect.poll(() => job.locator('.job-head .badge').textContent(), { timeout: JOB_TIMEOUT_MS }).toBe('succeeded');
    expect(await job.locator('.image-card').count()).toBe(3);
  });

  test('a file the browser cannot decode is flagged before upload, and the others are still sent', async () => {
    const page = await openConsole(cluster);
    await page.locator('#file-input').setInputFiles([
      { name: 'fake.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('this is a text file, not a JPEG') },
      { name: 'aqua.jpg', mimeType: 'image/jpeg', buffer: await readFile(corpus('aqua.jpg')) },
    ]);
    const fake = page.locator('.file', { hasText: 'fake.jpg' });
    await expect.poll(() => fake.getAttribute('data-flagged')).toBe('true');
    expect(await fake.locator('.file-flag-text').textContent()).toBe('not a readable image: will not be sent');
    expect(await page.locator('.file', { hasText: 'aqua.jpg' }).getAttribute('data-flagged')).toBeNull();
    await expect.poll(() => page.locator('#file-summary').textContent()).toMatch(/^2 images, .* · 1 flagged, not sent$/);
    await addStep(page, 'grayscale');
    await page.screenshot({ path: path.join(artifacts, 'flagged-file-desktop.png') });
    await page.getByRole('button', { name: 'Process images' }).click();
    const job = page.locator('article.job').first();
    await expect.poll(() => job.locator('.job-head .badge').textContent(), { timeout: JOB_TIMEOUT_MS }).toBe('succeeded');
    expect(await job.locator('.image-name').allTextContents()).toEqual(['aqua.jpg']);
    expect(await page.locator('#form-errors').isHidden()).toBe(true);
  });

  test('at 1280x900 the jobs sit beside the form, above the fold; the cluster reads as a sentence with the scaler folded away', async () => {
    const page = await openConsole(cluster);
    await page.locator('#file-input').setInputFiles([corpus('ladybird.jpg')]);
    await addStep(page, 'invert');
    await page.getByRole('button', { name: 'Process images' }).click();
    const job = page.locator('article.job').first();
    await expect.poll(() => job.locator('.job-head .badge').textContent(), { timeout: JOB_TIMEOUT_MS }).toBe('succeeded');
    const form = (await page.locator('.new-job').boundingBox())!;
    const card = (await job.boundingBox())!;
    expect(card.x).toBeGreaterThan(form.x + form.width);
    expect(card.y + 120).toBeLessThan(DESKTOP.height);
    // The cluster panel sits in the form's column: its workers table keeps every column there too.
    for (const cell of await page.locator('#workers-body tr').first().locator('th, td').all()) {
      const box = (await cell.boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(form.x + form.width);
    }
    await expect.poll(() => page.locator('#cluster-line').textContent()).toMatch(/^2 workers, (nothing queued|\d+ (s of work|units) queued)/);
    const details = page.locator('#scaler-details');
    expect(await details.evaluate((element) => (element as HTMLDetailsElement).open)).toBe(false);
    expect(await page.locator('#scaler-body').isVisible()).toBe(false);
    await page.screenshot({ path: path.join(artifacts, 'layout-desktop.png') });
    await details.locator('summary').click();
    await expect.poll(() => page.locator('#scaler-body').isVisible()).toBe(true);
    expect(await page.locator('#scaler-body').textContent()).toMatch(/Desired capacity/);
    await page.locator('.cluster').screenshot({ path: path.join(artifacts, 'cluster-details-open.png') });
  });

  test('at 390 px every column of the workers table stays on screen', async () => {
    const page = await openConsole(cluster, NARROW);
    const rows = page.locator('#workers-body tr');
    await expect.poll(() => rows.count()).toBe(2);
    for (const cell of await page.locator('#workers-body tr').first().locator('th, td').all()) {
      const box = (await cell.boundingBox())!;
      expect(box.width).toBeGreaterThan(0);
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(NARROW.width);
      expect(await cell.evaluate((element) => getComputedStyle(element, '::before').content)).toMatch(/^"(Id|Address|State|In flight|Last heartbeat|Slots)"$/);
    }
    expect(await page.locator('#workers-body tr').first().locator('.badge').textContent()).toBe('ready');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(NARROW.width);
    await page.locator('.cluster').scrollIntoViewIfNeeded();
    await page.locator('.cluster').screenshot({ path: path.join(artifacts, 'cluster-narrow.png') });
  });

  test('an answer of another shape is named, not drawn: the console reads answers through the protocol schemas', async () => {
    const page = await openConsole(cluster);
    await page.route('**/v1/cluster', (route) =>
      route.fulfill({ contentType: 'application/json', body: JSON.stringify({ workers: 'none', queueDepth: 0, desiredCapacity: 0, summary: 'a summary to show' }) }),
    );
    await page.reload();
    await expect.poll(() => page.locator('#workers-note').textContent()).toMatch(/^Cluster state unavailable: unexpected answer from \S+\/v1\/cluster: [^]*expected array[^]*workers/);
    expect(await page.locator('#cluster-line').textContent()).not.toBe('a summary to show');
  });

  test('the cluster view lists the workers the master knows', async () => {
    const response = await fetch(`${cluster.url}/v1/cluster`);
    // Loose: the console shows fields it does not know by name, so this test sees them too.
    const state = await parseResponse(clusterAnswer.loose(), response);
    const fields: Record<string, unknown> = state;
    expect(state.workers).toHaveLength(2);
    const page = await openConsole(cluster);
    const rows = page.locator('#workers-body tr');
    await expect.poll(() => rows.count()).toBe(2);
    for (const worker of state.workers) {
      await expect.poll(() => page.locator(`#workers-body tr[data-worker-id="${worker.id}"] td`).first().textContent()).toBe(worker.address);
    }
    await expect.poll(() => page.locator('#cluster-summary [data-field="workers"] dd').textContent()).toBe('2');
    // Every field the master reports is shown: its summary as a sentence, numbers as tiles (including ones the
    // console does not know by name), objects (the scaler's internals) folded away under "Scaler details".
    await expect.poll(() => page.locator('#cluster-line').textContent()).toBe(state.summary);
    const numbers = Object.keys(fields).filter((key) => typeof fields[key] === 'number');
    expect(await page.locator('#cluster-summary [data-field]').evaluateAll((tiles) => tiles.map((tile) => tile.getAttribute('data-field')))).toEqual(['workers', ...numbers]);
    const objects = Object.keys(fields).filter((key) => key !== 'workers' && typeof fields[key] === 'object');
    expect(await page.locator('#scaler-body > [data-field]').evaluateAll((parts) => parts.map((part) => part.getAttribute('data-field')))).toEqual(objects);
    await expect.poll(() => page.locator('#connection').textContent()).toBe('Master connected');
  });
});

describe('console on a master with DIPS_TOKEN', () => {
  const token = 'console-test-secret';
  let master: DipsProcess;
  let worker: DipsProcess | undefined;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    // The receiver is on loopback; webhooks are signed with the token.
    master = await startDips(['master', '--port', '0', '--data-dir', path.join(scratch, 'secured')], { DIPS_TOKEN: token, DIPS_WEBHOOK_ALLOW_PRIVATE: 'true' });
  });

  afterAll(async () => {
    await worker?.stop();
    await master?.stop();
    receiver?.close();
  });

  test('asks for the token, refuses a wrong one, then works: cancel a queued job, list the worker, run a job', async () => {
    const page = await openConsole(master);
    const dialog = page.getByRole('dialog', { name: 'Access token needed' });
    await expect.poll(() => dialog.isVisible()).toBe(true);
    await page.screenshot({ path: path.join(artifacts, 'token-desktop.png') });
    expect(await accessibilityViolations(page)).toEqual([]);

    // Cancelling leaves a readable error and a way back to the dialog.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => page.locator('#ops-error-text').textContent()).toBe('Could not load the operations: This master needs an access token; none was given.');
    await page.getByRole('button', { name: 'Enter token' }).click();
    await expect.poll(() => dialog.isVisible()).toBe(true);

    await dialog.getByLabel('Token').fill('wrong');
    await dialog.getByRole('button', { name: 'Connect' }).click();
    await expect.poll(() => dialog.locator('.token-refused').isVisible()).toBe(true);
    await dialog.getByLabel('Token').fill(token);
    await dialog.getByRole('button', { name: 'Connect' }).click();
    await expect.poll(() => dialog.isVisible()).toBe(false);
    await expect.poll(() => page.getByLabel('Operation', { exact: true }).locator('option').count()).toBeGreaterThan(3);
    expect(await page.getByRole('button', { name: 'Change token' }).isVisible()).toBe(true);

    // No worker yet: the job cannot finish, so cancelling it is certain to happen before it does.
    await page.locator('#file-input').setInputFiles([corpus('ladybird.jpg')]);
    await addStep(page, 'invert');
    await page.getByRole('button', { name: 'Process images' }).click();
    const queued = page.locator('article.job').first();
    await expect.poll(() => queued.locator('.job-head .badge').textContent()).toMatch(/^(queued|running)$/);
    expect(await queued.locator('.progress-text').textContent()).toBe('0 of 1 image done · 0%');
    await queued.getByRole('button', { name: 'Cancel job' }).click();
    await expect.poll(() => queued.locator('.job-head .badge').textContent()).toBe('canceled');
    const canceledId = await queued.getAttribute('data-job-id');
    const state = await fetch(`${master.url}/v1/jobs/${canceledId}`, { headers: { authorization: `Bearer ${token}` } });
    expect((await parseResponse(jobView, state)).status).toBe('canceled');

    worker = await startDips(['worker', '--port', '0', '--master', master.url], { DIPS_TOKEN: token });
    await expect.poll(() => page.locator('#workers-body tr').count(), { timeout: 15_000 }).toBe(1);

    // A webhook that is not an http(s) URL is refused at its field, before any byte is sent.
    const posts: string[] = [];
    page.on('request', (request) => {
      if (request.method() === 'POST') posts.push(new URL(request.url()).pathname);
    });
    await page.getByLabel('Webhook').fill('ftp://example.org/hooks');
    await page.getByRole('button', { name: 'Process images' }).click();
    await expect.poll(() => page.locator('#webhook-error').textContent()).toBe('webhook "ftp://example.org/hooks" is not an http(s) URL');
    expect(await page.locator('#form-errors').textContent()).toContain('webhook "ftp://example.org/hooks" is not an http(s) URL');
    expect(await page.getByLabel('Webhook').evaluate((input) => input === document.activeElement)).toBe(true);
    expect([posts, await page.locator('article.job').count()]).toEqual([[], 1]);

    await page.getByLabel('Webhook').fill(receiver.url('/hooks/console'));
    await page.getByRole('button', { name: 'Process images' }).click();
    await expect.poll(() => page.locator('article.job').count()).toBe(2);
    const done = page.locator('article.job').first();
    expect(await done.getAttribute('data-job-id')).not.toBe(canceledId);
    await expect.poll(() => done.getByRole('progressbar').getAttribute('aria-valuenow'), { timeout: JOB_TIMEOUT_MS }).toBe('100');
    await expect.poll(() => done.locator('.job-head .badge').textContent()).toBe('succeeded');
    expect(await done.locator('.job-meta').textContent()).toContain(`webhook to 127.0.0.1:${receiver.port}`);
    // The master called the webhook once, signed with its token, with the finished job.
    await expect.poll(() => receiver.calls.length, { timeout: 10_000 }).toBe(1);
    const [call] = receiver.calls;
    expect(call!.headers['x-dips-signature']).toBe(signWebhook(token, String(call!.headers['x-dips-timestamp']), call!.body));
    const finished = jobView.parse(JSON.parse(call!.body).job);
    expect([finished.id, finished.status]).toEqual([await done.getAttribute('data-job-id'), 'succeeded']);
    // The result preview was fetched with the token (an <img src> to the API would get 401).
    const card = done.locator('.image-card', { hasText: 'ladybird.jpg' });
    await expect.poll(() => card.locator('img').evaluateAll((images) => images.map((image) => (image as HTMLImageElement).naturalWidth > 0))).toEqual([true, true]);
    await page.screenshot({ path: path.join(artifacts, 'token-job-desktop.png'), fullPage: true });
  });
});

describe('console on a master with no worker', () => {
  let master: DipsProcess;

  beforeAll(async () => {
    master = await startDips(['master', '--port', '0', '--data-dir', path.join(scratch, 'lonely')]);
  });

  afterAll(async () => {
    await master?.stop();
  });

  test('the cluster panel and the queued job say that nothing can run, and how to start a worker', async () => {
    const page = await openConsole(master);
    const waiting = page.locator('#cluster-waiting');
    await expect.poll(() => waiting.textContent()).toBe(`Nothing can run now: no worker is registered with the master: start one with \`dips worker --master ${master.url}\`, or run \`dips up\``);
    await page.locator('#file-input').setInputFiles([corpus('storm.jpg')]);
    await addStep(page, 'invert');
    await page.getByRole('button', { name: 'Process images' }).click();
    const job = page.locator('article.job').first();
    await expect.poll(() => job.locator('.job-waiting').textContent(), { timeout: 10_000 }).toMatch(/^Waiting: no worker is registered with the master/);
    expect(await job.locator('.job-head .badge').textContent()).toBe('queued');
    await page.screenshot({ path: path.join(artifacts, 'no-worker-desktop.png'), fullPage: true });
    await job.getByRole('button', { name: 'Cancel job' }).click();
    await expect.poll(() => job.locator('.job-head .badge').textContent()).toBe('canceled');
    // Nothing ran: the cancelled job does not claim its image as done.
    expect(await job.locator('.progress-text').textContent()).toBe('0 of 1 image done · 0% · 1 canceled');
    expect(await job.locator('.job-waiting').isHidden()).toBe(true);
  });
});
