import { readFile } from 'node:fs/promises';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadsAnswer, jobAccepted, jobView, parseResponse } from '../../services/protocol/api.js';
import { batchAccepted, itemsPage } from '../../services/protocol/batch.js';
import { uploadSession, uploadSessionTerms, type UploadSession } from '../../services/protocol/uploads.js';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { startS3Server } from '../../bench/s3-server.js';
import { childrenRunning } from '../../bench/cluster.js';
import { pngDeclaring } from '../helpers/hostile-corpus.js';
import { corpus, download, getJob, pixelsOf, waitForJob, waitForWorker } from '../helpers/api.js';
import { exited, killAll, runDips, startDips, type DipsProcess } from '../helpers/processes.js';
import { errorBody } from '../../services/protocol/errors.js';

/* Upload sessions end to end, on local storage and on a real S3-protocol server on loopback (the real
   SDK in the master, presigned URLs fetched by this test and the CLI). One master and one worker per
   mode. In S3 mode DIPS_UPLOAD_PART_BYTES makes dune.jpg (360 kB) a multipart file of 3 parts while
   aqua.jpg (148 kB) is one presigned PUT. DIPS_TILE_SIZE=1400 lets those 1400x875 photos run whole
   while twowings-4k.jpg (3840x2400, 880 kB) tiles, so `dips submit` makes its session an upload job. */

const pipeline = [{ op: 'blur', sigma: 2 }, { op: 'invert' }];
const photos = ['aqua.jpg', 'dune.jpg'];
const partBytes = 160_000;
const tileSize = 1400;
const tiling = 'twowings-4k.jpg';

let tmp: string;
let s3: Awaited<ReturnType<typeof startS3Server>>;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-upload-sessions-'));
  s3 = await startS3Server();
  const reference = await runDips(['process', ...[...photos, tiling].map(corpus), '--pipeline', JSON.stringify(pipeline), '--out', path.join(tmp, 'reference'), '--format', 'png']);
  expect(reference.code, reference.stderr).toBe(0);
});
afterAll(async () => {
  await killAll();
  await s3.close();
});


async function openSession(master: string, files: Array<{ name: string; size: number }>): Promise<Response> {
  return fetch(`${master}/v1/uploads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ files }) });
}

async function session(master: string, files: Array<{ name: string; data: Buffer }>): Promise<UploadSession> {
  const response = await openSession(master, files.map(({ name, data }) => ({ name, size: data.length })));
  expect(response.status, await response.clone().text()).toBe(201);
  return uploadSession.parse(await response.json());
}

/** Sends every part of one file as the session says; completes it when it was sent in parts. */
async function send(master: string, upload: UploadSession, index: number, data: Buffer): Promise<void> {
  const file = upload.files[index]!;
  const etags: string[] = [];
  for (const part of file.parts) {
    const response = await fetch(new URL(part.url, master), { method: 'PUT', headers: part.headers, body: new Uint8Array(data.subarray(part.offset, part.offset + part.size)) });
    expect(response.status, await response.clone().text()).toBe(200);
    etags.push(response.headers.get('etag') ?? '');
  }
  if (file.complete) {
    const response = await fetch(new URL(file.complete, master), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ etags }) });
    expect(response.status, await response.clone().text()).toBe(200);
  }
}

function createJob(master: string, id: string): Promise<Response> {
  return fetch(`${master}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pipeline, format: 'png', inputs: { upload: id } }) });
}

async function expectError(response: Response, status: number, code: string, message: RegExp): Promise<void> {
  const body = await parseResponse(errorBody, response);
  expect(response.status, JSON.stringify(body)).toBe(status);
  expect(body.error.code).toBe(code);
  expect(body.error.message).toMatch(message);
}

/** Whether a process runs (a zombie, exited but not yet reaped, does not). */
async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/^\d+ \(.*\) Z/.test(stat);
}

/** Bytes the process has read and written through any file descriptor (sockets too), from /proc. */
async function ioBytes(pid: number): Promise<number> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)![1]);
  return field('rchar') + field('wchar');
}

async function expectReferencePixels(master: string, jobId: string): Promise<void> {
  for (const [index, photo] of photos.entries()) {
    const expected = await pixelsOf(path.join(tmp, 'reference', `${path.parse(photo).name}.png`));
    const actual = await pixelsOf(await download(master, jobId, index));
    expect(actual.data.equals(expected.data), `${photo} differs from dips process`).toBe(true);
  }
}

/**
 * A master of the version before upload jobs from sessions: this master behind a proxy that answers
 * POST /v1/uploads/{id}/job as a master answers a route it does not have (404 not_found). Records the
 * requests it saw, as "METHOD path" with ids replaced by <id>.
 */
async function withoutSessionJobs(target: string): Promise<{ url: string; seen: string[]; close(): void }> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const route = `${req.method} ${req.url!.split('?')[0]!.replace(/[0-9a-f-]{36}/g, '<id>')}`;
    seen.push(route);
    if (route === 'POST /v1/uploads/<id>/job') {
      req.resume();
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'not_found', message: `no route ${req.method} ${req.url}` } }));
      return;
    }
    const upstream = http.request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe.each(['local', 's3'] as const)('upload sessions, %s storage', (mode) => {
  let master: DipsProcess;
  let dataDir: string;
  const env = () => ({ ...(mode === 's3' ? s3.env : {}), DIPS_UPLOAD_PART_BYTES: String(partBytes), DIPS_MAX_FILES: '4', DIPS_TILE_SIZE: String(tileSize) });
  beforeAll(async () => {
    dataDir = path.join(tmp, `data-${mode}`);
    master = await startDips(['master', '--port', '0', '--data-dir', dataDir], env());
    const worker = await startDips(['worker', '--port', '0', '--master', master.url]);
    await waitForWorker(master.url, worker.url, 'ready');
  });

  it('dips submit sends the files through a session; the results equal dips process', async () => {
    const out = path.join(tmp, `out-${mode}`);
    const run = await runDips(['submit', ...photos.map(corpus), '--pipeline', JSON.stringify(pipeline), '--format', 'png', '--out', out, '--master', master.url]);
    expect(run.code, run.stderr).toBe(0);
    for (const photo of photos) {
      const expected = await pixelsOf(path.join(tmp, 'reference', `${path.parse(photo).name}.png`));
      expect((await pixelsOf(path.join(out, `${path.parse(photo).name}.png`))).data.equals(expected.data), `${photo} differs`).toBe(true);
    }
    // The inputs were staged by a session, not spooled from a multipart body: the job's items read them from it.
    const jobId = /job (\S+) accepted/.exec(run.stderr)![1]!;
    const { items } = itemsPage.parse(await (await fetch(`${master.url}/v1/jobs/${jobId}/items`)).json());
    expect(items.map((item) => [item.name, item.input])).toEqual(photos.map((photo, index) => [photo, expect.stringMatching(new RegExp(`^upload://[0-9a-f-]{36}/${index}$`))]));
    expect(jobView.parse(await (await fetch(`${master.url}/v1/jobs/${jobId}`)).json()).kind).toBe('batch');
  });

  it("dips submit makes a session with a file that tiles an upload job, which tiles it without the image's bytes passing the master; the results equal dips process", async () => {
    const terms = uploadSessionTerms.parse(await (await fetch(`${master.url}/v1/uploads`)).json());
    expect(terms.whole.tileSize).toBe(tileSize);
    const files = [tiling, 'aqua.jpg'];
    const out = path.join(tmp, `out-tiled-${mode}`);
    const before = await ioBytes(master.child.pid!);
    const run = await runDips(['submit', ...files.map(corpus), '--pipeline', JSON.stringify(pipeline), '--format', 'png', '--out', out, '--master', master.url]);
    const carried = (await ioBytes(master.child.pid!)) - before;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^job \S+ accepted \(2 images\)$/m);
    for (const file of files) {
      const expected = await pixelsOf(path.join(tmp, 'reference', `${path.parse(file).name}.png`));
      expect((await pixelsOf(path.join(out, `${path.parse(file).name}.png`))).data.equals(expected.data), `${file} differs`).toBe(true);
    }
    // An upload job, planned by the master (the large photo in tiles), not a session's batch job:
    const jobId = /job (\S+) accepted/.exec(run.stderr)![1]!;
    const job = jobView.parse(await (await fetch(`${master.url}/v1/jobs/${jobId}`)).json());
    expect([job.kind, job.images!.map((image) => [image.name, image.width, image.height])]).toEqual(['upload', [[tiling, 3840, 2400], ['aqua.jpg', 1400, 875]]]);
    // Uploads, the job's inputs, its tiles and the downloads all passed it by (a multipart job carries
    // every byte twice, in and on to storage): on local disk it read the headers from the files, in S3
    // mode it read each photo's head (128 KiB) for them; the rest is control traffic (tasks, results,
    // the job store's pages, event streams), under a quarter of the images' bytes locally and half in S3
    // mode (multipart and listing XML besides). The images once through the master would be all of them.
    const sizes = await Promise.all(files.map(async (file) => (await fs.stat(corpus(file))).size));
    const uploaded = sizes.reduce((sum, size) => sum + size, 0);
    const heads = mode === 's3' ? sizes.reduce((sum, size) => sum + Math.min(size, 128 * 1024), 0) : 0;
    expect(carried, `master carried ${carried} bytes for ${uploaded} uploaded, ${heads} of heads`).toBeLessThan(heads + (mode === 's3' ? uploaded / 2 : uploaded / 4));
    // A batch job from a session runs images whole only: its worker refuses the large photo.
    const data = await readFile(corpus(tiling));
    const upload = await session(master.url, [{ name: tiling, data }]);
    await send(master.url, upload, 0, data);
    const created = await createJob(master.url, upload.id);
    expect(created.status).toBe(202);
    const { id } = batchAccepted.parse(await created.json());
    expect((await waitForJob(master.url, id)).status).toBe('failed');
    expect((await getJob(master.url, id)).images![0]!.error).toMatch(/twowings-4k\.jpg: 3840x2400 needs tiling/);
  });

  // How dips submit copes with an older master is the client's choice, the same whatever the storage: one mode shows it.
  if (mode === 'local') it('dips submit falls back to one multipart job when the master cannot make an upload job from a session', async () => {
    const older = await withoutSessionJobs(master.url);
    try {
      const out = path.join(tmp, 'out-older-master');
      const run = await runDips(['submit', corpus(tiling), '--pipeline', JSON.stringify(pipeline), '--format', 'png', '--out', out, '--master', older.url]);
      expect(run.code, run.stderr).toBe(0);
      const expected = await pixelsOf(path.join(tmp, 'reference', `${path.parse(tiling).name}.png`));
      expect((await pixelsOf(path.join(out, `${path.parse(tiling).name}.png`))).data.equals(expected.data)).toBe(true);
      expect(older.seen.filter((route) => route.startsWith('POST'))).toEqual(['POST /v1/uploads', 'POST /v1/uploads/<id>/job', 'POST /v1/jobs', 'POST /v1/jobs/<id>/downloads']);
    } finally {
      older.close();
    }
  });

  it('a session is a multipart file and a single PUT as S3 wants them, and its job serves the results', async () => {
    const files = await Promise.all(photos.map(async (name) => ({ name, data: await readFile(corpus(name)) })));
    const upload = await session(master.url, files);
    expect(upload.files.map((file) => file.parts.length)).toEqual(mode === 's3' ? [1, 3] : [1, 1]);
    expect(upload.files.map((file) => file.complete !== undefined)).toEqual(mode === 's3' ? [false, true] : [false, false]);
    // Local: the storage service `dips master` started, on its own port; S3: the bucket.
    expect(master.storageUrl === undefined).toBe(mode === 's3');
    for (const file of upload.files) expect(new URL(file.parts[0]!.url, master.url).origin).toBe(mode === 's3' ? s3.endpoint : master.storageUrl);
    const [storagePid] = await childrenRunning(master.child.pid!, 'storage');
    expect(storagePid === undefined).toBe(mode === 's3');
    const before = await Promise.all([ioBytes(master.child.pid!), storagePid && ioBytes(storagePid)]);
    for (const [index, file] of files.entries()) await send(master.url, upload, index, file.data);
    const carried = (await ioBytes(master.child.pid!)) - before[0];
    const uploaded = files.reduce((sum, file) => sum + file.data.length, 0);
    // The bytes went from this client to the bucket or the storage service; the master at most completed the multipart file.
    expect(carried, `master carried ${carried} bytes for ${uploaded} uploaded`).toBeLessThan(uploaded / 10);
    // Local: the storage service received them and wrote them to disk, so it carried at least twice as much.
    if (storagePid) expect((await ioBytes(storagePid)) - before[1]!).toBeGreaterThan(2 * uploaded);
    const created = await createJob(master.url, upload.id);
    expect(created.status).toBe(202);
    const { id } = batchAccepted.parse(await created.json());
    expect((await waitForJob(master.url, id)).status).toBe('succeeded');
    // One result by its route: S3 redirects to the bucket; local disk answers the file, same origin as the console.
    const single = await fetch(`${master.url}/v1/jobs/${id}/images/1`, { redirect: 'manual' });
    expect(single.status).toBe(mode === 's3' ? 302 : 200);
    if (mode === 's3') expect(single.headers.get('location')).toMatch(new RegExp(`^${s3.endpoint}/${s3.bucket}/jobs/${id}/out/1\\?`));
    else expect(single.headers.get('content-disposition')).toBe('attachment; filename=dune.png');
    await expectReferencePixels(master.url, id);
    // Both results' URLs in one request, in the order asked: S3 presigned GETs of the bucket, local disk
    // signed GETs of the storage service, which this client fetches without the master.
    const asked = await fetch(`${master.url}/v1/jobs/${id}/downloads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ indexes: [1, 0] }) });
    expect(asked.status, await asked.clone().text()).toBe(200);
    const { downloads } = downloadsAnswer.parse(await asked.json());
    expect(downloads.map(({ index, name, contentType }) => [index, name, contentType])).toEqual([
      [1, 'dune.png', 'image/png'],
      [0, 'aqua.png', 'image/png'],
    ]);
    for (const entry of downloads) {
      if (mode === 's3') expect(entry.url).toMatch(new RegExp(`^${s3.endpoint}/${s3.bucket}/jobs/${id}/out/${entry.index}\\?`));
      else expect(entry.url).toMatch(new RegExp(`^${master.storageUrl}/storage/objects/jobs/${id}/out/${entry.index}\\?`));
      const fetched = await fetch(entry.url);
      expect(fetched.headers.get('content-disposition')).toBe(`attachment; filename=${entry.name}`);
      expect(fetched.headers.get('content-type')).toBe('image/png');
      const bytes = Buffer.from(await fetched.arrayBuffer());
      expect(bytes.equals(await download(master.url, id, entry.index)), `result ${entry.index} from its URL`).toBe(true);
    }
    // The session is spent: a second job from it is refused, naming the first.
    await expectError(await createJob(master.url, upload.id), 409, 'upload_used', new RegExp(id));
  });

  // S3 presigned PUTs stay valid until they expire, so a client can store a file again after its job was made (local storage writes each file once).
  if (mode === 's3') it('a file stored again after its job checked it is not processed: the worker\'s GET is pinned to the checked version', async () => {
    // A master with no worker yet, so the file can be stored again before any worker reads it.
    const idle = await startDips(['master', '--port', '0', '--data-dir', path.join(tmp, 'data-s3-pinned')], env());
    const [aqua, storm] = await Promise.all([readFile(corpus('aqua.jpg')), readFile(corpus('storm.jpg'))]);
    const upload = await session(idle.url, [{ name: 'aqua.jpg', data: aqua }]);
    await send(idle.url, upload, 0, aqua);
    const created = await createJob(idle.url, upload.id);
    expect(created.status).toBe(202);
    const { id } = batchAccepted.parse(await created.json());
    expect((await fetch(upload.files[0]!.parts[0]!.url, { method: 'PUT', body: new Uint8Array(storm) })).status).toBe(200);
    const worker = await startDips(['worker', '--port', '0', '--master', idle.url]);
    await waitForWorker(idle.url, worker.url, 'ready');
    expect((await waitForJob(idle.url, id)).status).toBe('failed');
    // Refused at once as permanent (not after the attempt limit), naming why.
    const { error } = (await getJob(idle.url, id)).images![0]!;
    expect(error).toMatch(/stored again after the job checked it, so it is not processed/);
    expect(error).not.toMatch(/attempts/);
  });

  it('refuses too many files, a file too large, a wrong size, a missing file and a forged URL, and loses nothing it accepted', async () => {
    await expectError(await openSession(master.url, [1, 2, 3, 4, 5].map((n) => ({ name: `${n}.jpg`, size: 10 }))), 413, 'too_many_files', /5 files; at most 4 .*DIPS_MAX_FILES/);
    await expectError(await openSession(master.url, [{ name: 'huge.tif', size: 300 * 1024 * 1024 }]), 413, 'file_too_large', /file 0 "huge.tif" declares 314572800 bytes/);

    const aqua = await readFile(corpus('aqua.jpg'));
    const notes = Buffer.from('shopping list: eggs, flour\n');
    const bomb = pngDeclaring(100_000, 100_000);
    const upload = await session(master.url, [{ name: 'aqua.jpg', data: aqua }, { name: 'notes.jpg', data: notes }, { name: 'late.jpg', data: aqua }, { name: 'bomb.png', data: bomb }]);
    const [first] = upload.files[0]!.parts;
    if (mode === 'local') {
      const forged = new URL(first!.url, master.url);
      forged.searchParams.set('signature', forged.searchParams.get('signature')!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')));
      await expectError(await fetch(forged, { method: 'PUT', body: new Uint8Array(aqua) }), 403, 'bad_signature', /not one this cluster signed/);
      const otherFile = new URL(upload.files[1]!.parts[0]!.url, master.url);
      otherFile.pathname = otherFile.pathname.replace(/\/1$/, '/0');
      await expectError(await fetch(otherFile, { method: 'PUT', body: new Uint8Array(aqua) }), 403, 'bad_signature', new RegExp(`PUT URL of uploads/${upload.id}/0 `));
      await expectError(await fetch(new URL(first!.url, master.url), { method: 'PUT', body: new Uint8Array(aqua.subarray(1)) }), 400, 'upload_wrong_size', new RegExp(`uploads/${upload.id}/0 was signed for 147909 bytes; this request sends 147908`));
      await send(master.url, upload, 0, aqua);
      // Stored once: the same file again is refused, the bytes already kept stay.
      await expectError(await fetch(new URL(first!.url, master.url), { method: 'PUT', body: new Uint8Array(aqua) }), 409, 'already_stored', /writes its object once/);
    } else {
      // S3 takes any body at a presigned PUT; the job's creation finds the wrong size from the object's metadata.
      expect((await fetch(first!.url, { method: 'PUT', body: new Uint8Array(aqua.subarray(1)) })).status).toBe(200);
      await expectError(await createJob(master.url, upload.id), 422, 'upload_wrong_size', /file 0 "aqua.jpg" holds 147908 bytes; the session declared 147909.*file 1 "notes.jpg" has not arrived/);
      await send(master.url, upload, 0, aqua);
    }
    await send(master.url, upload, 1, notes);
    await send(master.url, upload, 3, bomb);
    await expectError(await createJob(master.url, upload.id), 409, 'upload_incomplete', /file 2 "late.jpg" has not arrived/);
    await send(master.url, upload, 2, aqua);
    const created = await createJob(master.url, upload.id);
    expect(created.status).toBe(202);
    const { id } = batchAccepted.parse(await created.json());
    // A non-image and a pixel bomb fail as their own items with the errors an upload gets; the others succeed.
    const job = await waitForJob(master.url, id);
    expect(job.status).toBe('partial');
    const images = (await getJob(master.url, id)).images;
    expect(images.map((image) => [image.name, image.status])).toEqual([['aqua.jpg', 'succeeded'], ['notes.jpg', 'failed'], ['late.jpg', 'succeeded'], ['bomb.png', 'failed']]);
    expect(images[1]!.error).toMatch(/notes\.jpg: not an image in a supported format/);
    expect(images[3]!.error).toMatch(/bomb\.png: 100000x100000 is 10000000000 pixels; at most \d+/);
  });

  it('an upload job from a session refuses what a multipart job refuses, naming the file, and consumes nothing it refused', async () => {
    const aqua = await readFile(corpus('aqua.jpg'));
    const notes = Buffer.from('shopping list: eggs, flour\n');
    const uploadJob = (id: string, body: unknown = { pipeline, format: 'png' }) =>
      fetch(`${master.url}/v1/uploads/${id}/job`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await expectError(await uploadJob('3b241101-e2bb-4255-8caf-4136c566a962'), 404, 'upload_not_found', /no upload session with id "3b241101/);
    const upload = await session(master.url, [{ name: 'aqua.jpg', data: aqua }, { name: 'notes.jpg', data: notes }]);
    await expectError(await uploadJob(upload.id, { pipeline, colour: 'red' }), 400, 'bad_job', /colour/);
    await send(master.url, upload, 0, aqua);
    await expectError(await uploadJob(upload.id), 409, 'upload_incomplete', /file 1 "notes.jpg" has not arrived/);
    await send(master.url, upload, 1, notes);
    // Refused whole, as a multipart job is (in S3 mode these small files are read whole for their headers).
    await expectError(await uploadJob(upload.id), 415, 'unsupported_format', /notes\.jpg: not an image in a supported format/);
    const bombs = await session(master.url, [{ name: 'bomb.png', data: pngDeclaring(100_000, 100_000) }]);
    await send(master.url, bombs, 0, pngDeclaring(100_000, 100_000));
    await expectError(await uploadJob(bombs.id), 413, 'too_many_pixels', /bomb\.png: 100000x100000 is 10000000000 pixels/);
    // Nothing was consumed: the same session still makes a batch job, whose good file succeeds.
    const created = await createJob(master.url, upload.id);
    expect(created.status).toBe(202);
    const { id } = batchAccepted.parse(await created.json());
    expect((await waitForJob(master.url, id)).status).toBe('partial');
    expect((await getJob(master.url, id)).images.map((image) => [image.name, image.status])).toEqual([['aqua.jpg', 'succeeded'], ['notes.jpg', 'failed']]);
  });

  // Local disk reads every header from the file itself; only S3 chooses between a JPEG's head and the whole file.
  if (mode === 's3') it('an upload job reads a PNG over 128 KiB whole for its header, and runs it', async () => {
    const name = 'garden-odd.png';
    const data = await readFile(corpus(name));
    expect(data.length).toBeGreaterThan(128 * 1024);
    const upload = await session(master.url, [{ name, data }]);
    await send(master.url, upload, 0, data);
    const before = await ioBytes(master.child.pid!);
    const created = await fetch(`${master.url}/v1/uploads/${upload.id}/job`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pipeline, format: 'png' }) });
    expect(created.status, await created.clone().text()).toBe(202);
    // Read whole from the bucket (and spooled), not just its head.
    expect((await ioBytes(master.child.pid!)) - before).toBeGreaterThan(data.length);
    const { id } = jobAccepted.parse(await created.json());
    expect((await waitForJob(master.url, id)).status).toBe('succeeded');
    const expected = await runDips(['process', corpus(name), '--pipeline', JSON.stringify(pipeline), '--out', path.join(tmp, 'reference-png'), '--format', 'png']);
    expect(expected.code, expected.stderr).toBe(0);
    const reference = await pixelsOf(path.join(tmp, 'reference-png', 'garden-odd.png'));
    expect((await pixelsOf(await download(master.url, id, 0))).data.equals(reference.data)).toBe(true);
  });

  it('a master restarted between the uploads and the job creation still makes the job', async () => {
    const files = await Promise.all(photos.map(async (name) => ({ name, data: await readFile(corpus(name)) })));
    const upload = await session(master.url, files);
    await send(master.url, upload, 0, files[0]!.data);
    const port = new URL(master.url).port;
    const [storagePid] = await childrenRunning(master.child.pid!, 'storage');
    expect(storagePid === undefined).toBe(mode === 's3');
    master.child.kill('SIGKILL');
    await exited(master.child);
    // The storage service does not outlive its master.
    if (storagePid) await expect.poll(() => running(storagePid), { timeout: 5_000 }).toBe(false);
    master = await startDips(['master', '--port', port, '--data-dir', dataDir], env());
    // The URLs handed out before the restart still work: the signing key, the sessions and the storage service's port were kept.
    await send(master.url, upload, 1, files[1]!.data);
    const created = await createJob(master.url, upload.id);
    expect(created.status, await created.clone().text()).toBe(202);
    const { id } = batchAccepted.parse(await created.json());
    expect((await waitForJob(master.url, id)).status).toBe('succeeded');
    await expectReferencePixels(master.url, id);
  });
});

describe('local storage on every interface (DIPS_HOST=0.0.0.0)', () => {
  it('hands out storage URLs at the host the client reached the master at, and they work', async () => {
    const master = await startDips(['master', '--port', '0', '--data-dir', path.join(tmp, 'data-every-interface')], { DIPS_HOST: '0.0.0.0' });
    // The client knows the machine by a name of its own, not by the address the master listens on.
    const reached = master.url.replace('0.0.0.0', 'localhost');
    const worker = await startDips(['worker', '--port', '0', '--master', reached]);
    await waitForWorker(reached, worker.url, 'ready');
    const data = await readFile(corpus('aqua.jpg'));
    const upload = await session(reached, [{ name: 'aqua.jpg', data }]);
    const storagePort = new URL(master.storageUrl!).port;
    expect(upload.files[0]!.parts[0]!.url.startsWith(`http://localhost:${storagePort}/storage/objects/`), upload.files[0]!.parts[0]!.url).toBe(true);
    await send(reached, upload, 0, data);
    const created = await createJob(reached, upload.id);
    expect(created.status, await created.clone().text()).toBe(202);
    const { id } = batchAccepted.parse(await created.json());
    expect((await waitForJob(reached, id)).status).toBe('succeeded');
    const answer = await parseResponse(downloadsAnswer, await fetch(`${reached}/v1/jobs/${id}/downloads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ indexes: [0] }) }));
    const url = answer.downloads[0]!.url;
    expect(url.startsWith(`http://localhost:${storagePort}/storage/objects/`), url).toBe(true);
    const result = await fetch(url);
    expect(result.status).toBe(200);
    const expected = await pixelsOf(path.join(tmp, 'reference', 'aqua.png'));
    expect((await pixelsOf(Buffer.from(await result.arrayBuffer()))).data.equals(expected.data)).toBe(true);
  });
});

/**
 * An S3 endpoint for the master that forwards to `s3`, except that it stores `replacement` at a session's
 * file, as a client would through its still valid presigned PUT, just before the master's first
 * CopyObject of that file reaches the server: the window between the session's check and the job's copy.
 */
async function storingAgainBeforeCopy(s3: Awaited<ReturnType<typeof startS3Server>>, replacement: Buffer): Promise<{ url: string; close(): void }> {
  let stored = false;
  const server = http.createServer((req, res) => {
    const forward = () => {
      const upstream = http.request(new URL(req.url!, s3.endpoint), { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    };
    const source = decodeURIComponent(String(req.headers['x-amz-copy-source'] ?? ''));
    const staged = /\/(uploads\/[0-9a-f-]{36}\/\d+)$/.exec(source);
    if (!staged || stored) return forward();
    stored = true;
    s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: staged[1], Body: replacement })).then(forward, (error: unknown) => res.writeHead(500).end(String(error)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe('an upload job from a session on S3 whose file is stored again while the job is made', () => {
  it('answers 409 upload_changed naming the file, keeps nothing of that job, and takes the file as it is now when asked again', async () => {
    const bucket = await startS3Server('dips-stored-again');
    const checked = await readFile(corpus('aqua.jpg'));
    // The same size, another version: the first value of the first quantisation table changed (still a valid JPEG).
    const replacement = Buffer.from(checked);
    expect(replacement.readUInt16BE(2)).toBe(0xffdb);
    replacement[7] = replacement[7]! + 1;
    const endpoint = await storingAgainBeforeCopy(bucket, replacement);
    try {
      const master = await startDips(['master', '--port', '0', '--data-dir', path.join(tmp, 'data-stored-again')], { ...bucket.env, AWS_ENDPOINT_URL_S3: endpoint.url });
      const upload = await session(master.url, [{ name: 'aqua.jpg', data: checked }]);
      await send(master.url, upload, 0, checked);
      const uploadJob = () => fetch(`${master.url}/v1/uploads/${upload.id}/job`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pipeline, format: 'png' }) });
      await expectError(await uploadJob(), 409, 'upload_changed', new RegExp(`upload session ${upload.id}: file 0 "aqua\\.jpg" was stored again while the job was being made from it; make the job again`));
      const jobObjects = async () => ((await bucket.client.send(new ListObjectsV2Command({ Bucket: bucket.bucket, Prefix: 'jobs/' }))).Contents ?? []).map((object) => object.Key);
      expect(await jobObjects()).toEqual([]);
      const created = await uploadJob();
      expect(created.status, await created.clone().text()).toBe(202);
      const { id } = jobAccepted.parse(await created.json());
      const input = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: `jobs/${id}/in/0` }));
      expect(Buffer.from(await input.Body!.transformToByteArray()).equals(replacement)).toBe(true);
    } finally {
      endpoint.close();
      await bucket.close();
    }
  });
});
