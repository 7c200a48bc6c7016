import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePipeline } from '../../services/image-core/pipeline.js';
import { processImage } from '../../services/image-core/process-image.js';
import { download, meanDifference, pixelsOf, postJob, submit, unzip, waitForJob, waitUntil } from '../helpers/api.js';
import {
  animatedGif,
  cmykJpeg,
  corpusBytes,
  exifRotatedJpeg,
  gifDeclaring,
  photoCrop,
  png16,
  pngDeclaring,
  progressiveJpegDeclaring,
  truncated,
  webpDeclaring,
} from '../helpers/hostile-corpus.js';
import { killAll, memoryOf, startCluster, type DipsProcess } from '../helpers/processes.js';
import { parseResponse } from '../../services/protocol/api.js';
import { errorBody } from '../../services/protocol/errors.js';

const pipeline = JSON.stringify([{ op: 'invert' }]);
const steps = parsePipeline(JSON.parse(pipeline));
/** The same generous bound as under load: hostile uploads must not make the master hold more. */
const masterMemoryBound = 400 * 1024 * 1024;

let master: DipsProcess;
let dataDir: string;
let crop: Buffer;
beforeAll(async () => {
  dataDir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'dips-hostile-')), 'data');
  ({ master } = await startCluster({ workers: 1, dataDir }));
  crop = await photoCrop('ladybird.jpg', { left: 300, top: 200, width: 150, height: 100 });
});
afterAll(killAll);

interface ErrorAnswer {
  status: number;
  code: string;
  message: string;
}

async function errorOf(response: Response): Promise<ErrorAnswer> {
  const body = await parseResponse(errorBody, response);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
  return { status: response.status, ...body.error };
}

/** A multipart/form-data body written out byte by byte, so tests can send what no well-behaved client would. */
function multipartBody(boundary: string, parts: Array<{ name: string; filename?: string; data: Buffer | string }>): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const filename = part.filename === undefined ? '' : `; filename="${part.filename}"`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"${filename}\r\n`));
    if (part.filename !== undefined) chunks.push(Buffer.from('Content-Type: application/octet-stream\r\n'));
    chunks.push(Buffer.from('\r\n'), Buffer.from(part.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

const postRaw = (contentType: string, body: Buffer) =>
  fetch(`${master.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': contentType }, body: body as Uint8Array<ArrayBuffer> });

const spooled = async () => (await fs.readdir(path.join(dataDir, 'spool')).catch(() => [])).length;

/** The reference result of processImage for one input, as raw pixels. */
async function referenceOf(input: Buffer, name: string) {
  return pixelsOf((await processImage(input, steps, { format: 'png' }, { maxPixels: 268_402_689, name })).data);
}

/** Mean absolute difference of two equally laid out pixel buffers. */
describe('rejected before anything is stored: a 4xx naming the problem', () => {
  it('empty, not an image, a cut header, a pixel bomb and tiny files declaring enormous frames', async () => {
    const cases: Array<[string, { name: string; data: Buffer }, number, string, RegExp]> = [
      ['empty file', { name: 'empty.png', data: Buffer.alloc(0) }, 400, 'empty_image', /"empty\.png" is empty/],
      ['text', { name: 'notes.jpg', data: Buffer.from('Dear user, this is a letter, not a photograph.\n') }, 415, 'unsupported_format', /notes\.jpg: not an image/],
      ['PNG cut inside its header', { name: 'cut-header.png', data: crop.subarray(0, 20) }, 415, 'corrupt_image', /cut-header\.png/],
      ['PNG declaring 100000x100000', { name: 'bomb.png', data: pngDeclaring(100_000, 100_000) }, 413, 'too_many_pixels', /bomb\.png: 100000x100000 is 10000000000 pixels; at most \d+/],
      ['35-byte GIF declaring 65535x65535', { name: 'huge.gif', data: gifDeclaring(65_535, 65_535) }, 413, 'too_many_pixels', /huge\.gif: 65535x65535/],
      // Under the general limit, but GIF and WebP frames are decoded whole: each would take about 1 GB.
      ['35-byte GIF declaring 20000x10000', { name: 'wide.gif', data: gifDeclaring(20_000, 10_000) }, 413, 'too_many_pixels', /wide\.gif: 20000x10000 .* for GIF, which is decoded whole/],
      ['38-byte WebP declaring 12000x10000', { name: 'flat.webp', data: await webpDeclaring(12_000, 10_000) }, 413, 'too_many_pixels', /flat\.webp: 12000x10000 .* for WEBP, which is decoded whole/],
      // Under the pixel limit, but a progressive JPEG's decoder keeps all its coefficients: 720 MB here, more than a 512 MiB worker.
      ['progressive JPEG header declaring 12000x10000', { name: 'deep.jpg', data: await progressiveJpegDeclaring(12_000, 10_000) }, 413, 'too_many_pixels', /deep\.jpg: decoding a progressive JPEG of 12000x10000 holds about 687 MiB at once, more than the 512 MiB a worker has \(DIPS_WORKER_MEMORY_BYTES\); a baseline \(sequential\) JPEG decodes row by row/],
    ];
    for (const [what, image, status, code, message] of cases) {
      const response = await postJob(master.url, [image], { pipeline });
      expect(response.status, what).toBe(status);
      const error = await errorOf(response);
      expect(error, what).toMatchObject({ status, code });
      expect(error.message, what).toMatch(message);
    }
  });

  it('3000 tiny file parts in one upload: 413 naming the file-count limit', async () => {
    const parts = Array.from({ length: 3000 }, (_, i) => ({ name: `tiny-${i}.png`, data: Buffer.from([i % 256]) }));
    const error = await errorOf(await postJob(master.url, parts, { pipeline }));
    expect(error).toMatchObject({ status: 413, code: 'too_many_files' });
    expect(error.message).toMatch(/at most 100 images per job/);
  });

  it('3000 pipeline fields: 400 at the first repeat; a 1.6 MB pipeline field: 413 naming it', async () => {
    const manyFields = Array.from({ length: 3000 }, () => ({ name: 'pipeline', data: pipeline }));
    const fields = await errorOf(await postRaw('multipart/form-data; boundary=dips-boundary-3', multipartBody('dips-boundary-3', manyFields)));
    expect(fields).toMatchObject({ status: 400, code: 'duplicate_field' });
    expect(fields.message).toMatch(/"pipeline"/);
    const hugePipeline = JSON.stringify(Array.from({ length: 100_000 }, () => ({ op: 'invert' })));
    const field = await errorOf(await postJob(master.url, [{ name: 'photo.png', data: crop }], { pipeline: hugePipeline }));
    expect(field).toMatchObject({ status: 413, code: 'field_too_large' });
    expect(field.message).toMatch(/"pipeline"/);
  });

  it('malformed multipart: no boundary, a boundary the body does not use, a body cut short, no pipeline field', async () => {
    const parts = [
      { name: 'pipeline', data: pipeline },
      { name: 'images', filename: 'photo.png', data: crop },
    ];
    const body = multipartBody('dips-boundary-1', parts);
    const noBoundary = await errorOf(await postRaw('multipart/form-data', body));
    expect(noBoundary).toMatchObject({ status: 400, code: 'malformed_multipart' });
    expect(noBoundary.message).toMatch(/boundary/i);

    const wrongBoundary = await errorOf(await postRaw('multipart/form-data; boundary=some-other-boundary', body));
    expect(wrongBoundary).toMatchObject({ status: 400, code: 'malformed_multipart' });
    expect(wrongBoundary.message).toMatch(/unexpected end of form/i);

    const cut = await errorOf(await postRaw('multipart/form-data; boundary=dips-boundary-1', truncated(body, 0.5)));
    expect(cut.status).toBe(400);
    expect(cut.message).toMatch(/photo\.png|unexpected end of form/i);

    const noPipeline = await errorOf(await postRaw('multipart/form-data; boundary=dips-boundary-1', multipartBody('dips-boundary-1', parts.slice(1))));
    expect(noPipeline).toMatchObject({ status: 400, code: 'missing_pipeline' });
    expect(noPipeline.message).toMatch(/"pipeline" field is missing/);
    expect(await spooled(), 'spooled uploads left behind').toBe(0);
  });

  it('a client that hangs up mid-upload leaves no spooled file behind', async () => {
    const body = multipartBody('dips-boundary-2', [
      { name: 'pipeline', data: pipeline },
      { name: 'images', filename: 'photo.png', data: crop },
    ]);
    const request = http.request(`${master.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=dips-boundary-2', 'content-length': body.length },
    });
    request.on('error', () => {}); // the hang-up below is the point
    request.write(truncated(body, 0.6));
    // Once the master has started spooling the image, the client disappears.
    await waitUntil(spooled, (files) => files > 0, 10_000, 'the upload to be spooled');
    request.destroy();
    await waitUntil(spooled, (files) => files === 0, 10_000, 'the spooled part to be removed');
  });
});

describe('a client slowed down by machine load', () => {
  it('still gets an answer on a kept-alive connection it reuses 6 s after the previous answer', async () => {
    // A client reuses an idle connection without knowing whether the server has closed it in the
    // meantime; with Node's default 5 s keep-alive, the second request below met a closed socket.
    const { hostname, port } = new URL(master.url);
    const socket = net.connect(Number(port), hostname);
    try {
      let received = '';
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
      });
      // Answers follow each other on the connection without a line break between a body and the next status line.
      const answers = () => received.match(/HTTP\/1\.1 \d{3}/g) ?? [];
      const request = 'GET /healthz HTTP/1.1\r\nHost: dips\r\n\r\n';
      socket.write(request);
      await waitUntil(async () => answers().length, (count) => count === 1, 5_000, 'the first answer');
      await sleep(6_000);
      expect(socket.readableEnded, 'the master closed the idle connection').toBe(false);
      socket.write(request);
      await waitUntil(async () => answers().length, (count) => count === 2, 5_000, 'the second answer');
      expect(answers()).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
    } finally {
      socket.destroy();
    }
  });
});

describe('accepted, then failed where only decoding finds the problem', () => {
  it('truncated JPEG and PNG fail with errors naming them; the good image of the same job succeeds', async () => {
    const jpeg = await corpusBytes('storm.jpg');
    const id = await submit(
      master.url,
      [
        { name: 'cut.jpg', data: truncated(jpeg, 0.3) },
        { name: 'cut.png', data: truncated(crop, 0.5) },
        { name: 'whole.png', data: crop },
      ],
      { pipeline, format: 'png' },
    );
    const job = await waitForJob(master.url, id);
    // Some failed, one succeeded: partial (the contract's status for it).
    expect(job.status).toBe('partial');
    expect(job.images[0]).toMatchObject({ name: 'cut.jpg', status: 'failed' });
    // libvips' own words ("premature end of JPEG file") when it still has them, DIPS' otherwise.
    expect(job.images[0]!.error).toMatch(/cut\.jpg: cannot decode the image \(.*(premature end|truncated or corrupt)/i);
    expect(job.images[1]).toMatchObject({ name: 'cut.png', status: 'failed' });
    expect(job.images[1]!.error).toMatch(/cut\.png: cannot decode the image/);
    expect(job.images[2]).toMatchObject({ name: 'whole.png', status: 'succeeded' });
    const expected = await referenceOf(crop, 'whole.png');
    expect((await pixelsOf(await download(master.url, id, 2))).data.equals(expected.data)).toBe(true);
    const failedDownload = await errorOf(await fetch(`${master.url}/v1/jobs/${id}/images/0`));
    expect(failedDownload).toMatchObject({ status: 409, code: 'image_not_ready' });
  });
});

describe('awkward but valid inputs are normalised', () => {
  it('animated GIF: the first frame only', async () => {
    const gif = await animatedGif(40, 30, [
      [255, 0, 0],
      [0, 0, 255],
    ]);
    const id = await submit(master.url, [{ name: 'blink.gif', data: gif }], { pipeline, format: 'png' });
    const job = await waitForJob(master.url, id);
    expect(job.images[0]).toMatchObject({ status: 'succeeded', width: 40, height: 30 });
    const { data, channels, width, height } = await pixelsOf(await download(master.url, id, 0));
    expect([width, height]).toEqual([40, 30]);
    for (let i = 0; i < data.length; i += channels) {
      // Red inverted is cyan; the second (blue) frame would give yellow.
      expect([data[i], data[i + 1], data[i + 2]], `pixel ${i / channels}`).toEqual([0, 255, 255]);
    }
  });

  it('CMYK JPEG and 16-bit PNG come out as 8-bit sRGB with the photo’s colours', async () => {
    const original = await sharp(crop).negate().raw().toBuffer();
    for (const [name, input] of [
      ['print.jpg', await cmykJpeg(crop)],
      ['deep.png', await png16(crop)],
    ] as const) {
      const id = await submit(master.url, [{ name, data: input }], { pipeline, format: 'png' });
      expect((await waitForJob(master.url, id)).status, name).toBe('succeeded');
      const output = await download(master.url, id, 0);
      expect(await sharp(output).metadata(), name).toMatchObject({ space: 'srgb', depth: 'uchar', channels: 3 });
      const actual = await pixelsOf(output);
      expect(actual.data.equals((await referenceOf(input, name)).data), `${name} differs from processImage`).toBe(true);
      // Colours survived the conversion: close to the inverted 8-bit photo. The CMYK round trip through
      // colour profiles and lossy JPEG moves values by about 8 on average; CMYK read as RGB would be far off.
      expect(meanDifference(actual.data, original), name).toBeLessThan(12);
    }
  });

  it('EXIF-rotated photo: orientation applied, width and height swapped', async () => {
    const sideways = await exifRotatedJpeg(crop);
    const id = await submit(master.url, [{ name: 'phone.jpg', data: sideways }], { pipeline, format: 'png' });
    const job = await waitForJob(master.url, id);
    expect(job.images[0]).toMatchObject({ status: 'succeeded', width: 100, height: 150 });
    const actual = await pixelsOf(await download(master.url, id, 0));
    expect([actual.width, actual.height]).toEqual([100, 150]);
    const upright = await sharp(crop).rotate(90).negate().raw().toBuffer();
    expect(meanDifference(actual.data, upright)).toBeLessThan(6);
  });

  it('path-like and 1000-character file names are reduced to safe display names; nothing is written outside the data dir', async () => {
    const longName = `${'long'.repeat(249)}.png`;
    const id = await submit(
      master.url,
      [
        { name: '../../etc/passwd', data: crop },
        { name: 'a/b\\c.jpg', data: crop },
        { name: longName, data: crop },
      ],
      { pipeline, format: 'png' },
    );
    const job = await waitForJob(master.url, id);
    expect(job.status).toBe('succeeded');
    expect(job.images.map((image) => image.name)).toEqual(['passwd', 'c.jpg', longName.slice(0, 200)]);
    const dispositions = [];
    for (const index of [0, 1, 2]) {
      const response = await fetch(`${master.url}/v1/jobs/${id}/images/${index}`);
      expect(response.status).toBe(200);
      dispositions.push(response.headers.get('content-disposition'));
    }
    expect(dispositions[0]).toMatch(/filename="?passwd\.png"?$/);
    expect(dispositions[1]).toMatch(/filename="?c\.png"?$/);
    const archive = Buffer.from(await (await fetch(`${master.url}/v1/jobs/${id}/archive`)).arrayBuffer());
    const entries = await unzip(archive);
    expect([...entries.keys()].sort()).toEqual(['c.png', `${longName.slice(0, 200)}.png`, 'passwd.png'].sort());
    const expected = await referenceOf(crop, 'crop.png');
    for (const [name, data] of entries) expect((await pixelsOf(data)).data.equals(expected.data), name).toBe(true);
    await expect(fs.access(path.join(dataDir, '..', 'etc'))).rejects.toThrow();
    await expect(fs.access(path.join(dataDir, 'etc'))).rejects.toThrow();
  });
});

describe('after all of it', () => {
  it('the master still serves a normal job, has no spooled upload left and stayed within its memory bound', async () => {
    const id = await submit(master.url, [{ name: 'normal.png', data: crop }], { pipeline, format: 'png' });
    expect((await waitForJob(master.url, id)).status).toBe('succeeded');
    expect((await pixelsOf(await download(master.url, id, 0))).data.equals((await referenceOf(crop, 'normal.png')).data)).toBe(true);
    expect(await spooled()).toBe(0);
    const memory = await memoryOf(master.child);
    expect(memory.peak).toBeLessThan(masterMemoryBound);
    console.info(`hostile input: master peak RSS ${(memory.peak / 2 ** 20).toFixed(0)} MiB`);
  });
});
