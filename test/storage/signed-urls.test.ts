import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UrlSigner } from '../../services/storage/signed-urls.js';

/* The signing key of local storage's URLs, as the master and its storage service each open it from the
   data directory: one key, private to its owner, the same for every process that opens it. */

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-signed-urls-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

const grant = { method: 'PUT', key: 'uploads/s/0', size: 1234, expiresAt: Date.UTC(2030, 0, 1) } as const;
const queryOf = (signed: string) => Object.fromEntries(new URL(signed, 'http://storage').searchParams);

describe('UrlSigner.forDataDir', () => {
  it('makes one key readable by its owner only, and a URL signed with it checks in another opening of the directory', async () => {
    const signed = UrlSigner.forDataDir(dir).path(grant);
    const stat = await fs.stat(path.join(dir, 'storage-signing.key'));
    expect({ size: stat.size, mode: (stat.mode & 0o777).toString(8) }).toEqual({ size: 32, mode: '600' });
    expect(UrlSigner.forDataDir(dir).verify('PUT', grant.key, queryOf(signed), Date.UTC(2029, 0, 1))).toEqual(grant);
    // No partial file is left beside it.
    expect(await fs.readdir(dir)).toEqual(['storage-signing.key']);
  });

  it("deletes an earlier version's signing key, which nothing reads now, from a data directory an upgrade kept", async () => {
    const upgraded = path.join(dir, 'upgraded');
    await fs.mkdir(upgraded);
    await fs.writeFile(path.join(upgraded, 'upload-signing.key'), Buffer.alloc(32, 7), { mode: 0o600 });
    UrlSigner.forDataDir(upgraded);
    expect(await fs.readdir(upgraded)).toEqual(['storage-signing.key']);
  });

  it('processes opening a new directory at the same moment all get the same whole key', async () => {
    const fresh = path.join(dir, 'raced');
    // The built module, as the master and the storage service run it (npm test builds first).
    const module = path.resolve(import.meta.dirname, '../../dist/services/storage/signed-urls.js');
    const script = `const { UrlSigner } = await import(${JSON.stringify(module)}); process.stdout.write(UrlSigner.forDataDir(${JSON.stringify(fresh)}).path(${JSON.stringify(grant)}));`;
    const signatures = await Promise.all(
      Array.from({ length: 8 }, () => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk));
        return new Promise<string>((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`)))));
      }),
    );
    expect(new Set(signatures).size).toBe(1);
    expect(UrlSigner.forDataDir(fresh).path(grant)).toBe(signatures[0]);
  });
});
