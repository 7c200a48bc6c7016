import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { childrenRunning } from '../../bench/cluster.js';
import { LocalStorage } from '../../services/master/local-storage.js';
import { readErrorResponse } from '../../services/protocol/errors.js';
import { startStorageService, type RunningStorageService } from '../../services/storage/server.js';
import { UrlSigner } from '../../services/storage/signed-urls.js';
import { corpus } from '../helpers/api.js';
import { killAll, startDips } from '../helpers/processes.js';

/* The storage service on loopback: signed GETs and PUTs of a master's data directory, minted as the
   master mints them (LocalStorage with the service's URL), and the service as `dips master`'s child
   process, started again on its port after a crash. */

let dir: string;
let service: RunningStorageService;
/** The master's side: URLs for the service, from the same data directory's key. */
let storage: LocalStorage;
let now = Date.now();

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-storage-service-'));
  vi.stubEnv('DIPS_LOG_LEVEL', 'warn');
  service = await startStorageService({ dataDir: dir, port: 0 });
  storage = new LocalStorage(path.join(dir, 'files'), { signer: UrlSigner.forDataDir(dir), serviceUrl: service.url }, () => now);
});
afterAll(async () => {
  await killAll();
  await service.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const as = { fileName: 'aqua-blurred.jpg', contentType: 'image/jpeg' };

describe('the storage service', () => {
  it('answers a signed GET with the object as the signed name and type, and a signed PUT stores exactly its bytes', async () => {
    const photo = await fs.readFile(corpus('aqua.jpg'));
    const put = await fetch((await storage.uploadUrl('jobs/j1/out/0', photo.length, Date.now() + 60_000))!, { method: 'PUT', body: new Uint8Array(photo) });
    expect(put.status, await put.clone().text()).toBe(200);
    const url = (await storage.downloadUrl('jobs/j1/out/0', as))!;
    expect(url.startsWith(`${service.url}/storage/objects/jobs/j1/out/0?`)).toBe(true);
    const got = await fetch(url);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('image/jpeg');
    expect(got.headers.get('content-disposition')).toBe('attachment; filename=aqua-blurred.jpg');
    expect(Buffer.from(await got.arrayBuffer()).equals(photo)).toBe(true);
  });

  it('refuses a GET whose name, key or signature was changed, an expired one, and names an object that is gone', async () => {
    await storage.putBuffer('jobs/j2/out/0', Buffer.from('result'));
    const url = new URL((await storage.downloadUrl('jobs/j2/out/0', as))!);
    const renamed = new URL(url);
    renamed.searchParams.set('name', 'other.jpg');
    const otherKey = new URL(url);
    otherKey.pathname = otherKey.pathname.replace('/j2/', '/j1/');
    const unsigned = new URL(url);
    unsigned.searchParams.delete('signature');
    for (const forged of [renamed, otherKey, unsigned]) {
      expect(await readErrorResponse(await fetch(forged))).toMatchObject({ status: 403, code: 'bad_signature' });
    }
    now -= 16 * 60_000;
    const expired = (await storage.downloadUrl('jobs/j2/out/0', as))!;
    now = Date.now();
    expect(await readErrorResponse(await fetch(expired))).toMatchObject({ status: 403, code: 'url_expired' });
    await storage.deletePrefix('jobs/j2');
    expect(await readErrorResponse(await fetch(url))).toMatchObject({ status: 404, code: 'object_not_found', message: expect.stringContaining('jobs/j2/out/0') });
    // The service goes on serving.
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
  });

  it('dips master starts it as its child, and starts it again on the same port when it crashes', async () => {
    const dataDir = path.join(dir, 'master');
    const master = await startDips(['master', '--port', '0', '--data-dir', dataDir]);
    expect(master.storageUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const [first] = await childrenRunning(master.child.pid!, 'storage');
    process.kill(first!, 'SIGKILL');
    await expect.poll(async () => (await childrenRunning(master.child.pid!, 'storage'))[0], { timeout: 10_000 }).not.toBe(first);
    await expect.poll(async () => (await fetch(`${master.storageUrl}/healthz`).catch(() => undefined))?.status, { timeout: 10_000 }).toBe(200);
    // An upload URL handed out now is served at the same address.
    const session = await (await fetch(`${master.url}/v1/uploads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ files: [{ name: 'a.jpg', size: 3 }] }) })).json();
    expect(new URL(session.files[0].parts[0].url).origin).toBe(master.storageUrl);
    expect((await fetch(session.files[0].parts[0].url, { method: 'PUT', body: 'abc' })).status).toBe(200);
    expect(master.log()).toMatch(/storage service exited unexpectedly; starting it again on the same port/);
  });

  it('dips storage runs alone; a master given its URL (DIPS_STORAGE_URL) starts none and hands out its URLs', async () => {
    const dataDir = path.join(dir, 'separate');
    const storageService = await startDips(['storage', '--port', '0', '--data-dir', dataDir]);
    const master = await startDips(['master', '--port', '0', '--data-dir', dataDir], { DIPS_STORAGE_URL: storageService.url });
    expect(master.storageUrl).toBeUndefined();
    expect(await childrenRunning(master.child.pid!, 'storage')).toEqual([]);
    const data = await fs.readFile(corpus('aqua.jpg'));
    const session = await (await fetch(`${master.url}/v1/uploads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ files: [{ name: 'aqua.jpg', size: data.length }] }) })).json();
    const url = new URL(session.files[0].parts[0].url);
    expect(url.origin).toBe(storageService.url);
    expect((await fetch(url, { method: 'PUT', body: data })).status).toBe(200);
    // The master's own routes do not take the bytes: it leaves them to the service.
    expect((await fetch(`${master.url}${url.pathname}${url.search}`, { method: 'PUT', body: data })).status).toBe(404);
    // Both read one data directory: the master finds the file the service stored.
    const created = await fetch(`${master.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pipeline: [{ op: 'invert' }], inputs: { upload: session.id } }) });
    expect(created.status, await created.clone().text()).toBe(202);
  });
});
