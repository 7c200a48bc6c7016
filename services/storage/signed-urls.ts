import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HttpError } from '../shared/http-error.js';

/**
 * What one signed URL of local storage allows: one method on one key until `expiresAt`, a PUT of
 * exactly `size` bytes, a GET answered as file `name` of type `type` (as S3 signs
 * response-content-disposition). Local storage's stand-in for an S3 presigned URL.
 */
export type Grant = { key: string; expiresAt: number } & ({ method: 'PUT'; size: number } | { method: 'GET'; name: string; type: string });

/**
 * Signs and checks local storage's URLs with HMAC-SHA256 over the whole grant. The key is 32 random
 * bytes made once in the data directory (mode 0600): the master signs with it and whoever serves the
 * files (the storage service, or the master itself) checks with it, and URLs outlive a restart.
 */
export class UrlSigner {
  private constructor(private readonly key: Buffer) {}

  static forDataDir(dataDir: string): UrlSigner {
    mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, 'storage-signing.key');
    // Written whole beside it, then linked into place: the master and its storage service may start
    // together, and the one that loses the race must read the winner's whole key, never a half-written one.
    const partial = `${file}.partial-${process.pid}`;
    writeFileSync(partial, randomBytes(32), { mode: 0o600 });
    try {
      linkSync(partial, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      rmSync(partial, { force: true });
    }
    // The key of versions before the storage service (signed upload URLs of the master), which nothing
    // reads now: a secret is not left lying in a data directory an upgrade kept.
    rmSync(path.join(dataDir, 'upload-signing.key'), { force: true });
    return new UrlSigner(readFileSync(file));
  }

  /** The path and query of the grant's URL, under the storage routes (`/storage/objects/<key>`). */
  path(grant: Grant): string {
    const query = new URLSearchParams({ expires: String(grant.expiresAt), ...(grant.method === 'PUT' ? { size: String(grant.size) } : { name: grant.name, type: grant.type }) });
    query.set('signature', this.signature(grant));
    return `/storage/objects/${grant.key}?${query}`;
  }

  /** The grant a request's URL carries: its signature checked in constant time, then its expiry (403 for either). */
  verify(method: Grant['method'], key: string, query: Record<string, unknown>, now: number): Grant {
    const text = (name: string) => (typeof query[name] === 'string' ? query[name] : '');
    const expiresAt = Number(text('expires'));
    const grant: Grant = method === 'PUT' ? { method, key, expiresAt, size: Number(text('size')) } : { method, key, expiresAt, name: text('name'), type: text('type') };
    const given = Buffer.from(text('signature'), 'base64url');
    const expected = Buffer.from(this.signature(grant), 'base64url');
    if (!Number.isSafeInteger(expiresAt) || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new HttpError(403, 'bad_signature', `the ${method} URL of ${key} is not one this cluster signed`);
    }
    if (now > expiresAt) throw new HttpError(403, 'url_expired', `the ${method} URL of ${key} expired at ${new Date(expiresAt).toISOString()}`);
    return grant;
  }

  private signature(grant: Grant): string {
    const fields = grant.method === 'PUT' ? [grant.size] : [grant.name, grant.type];
    return createHmac('sha256', this.key).update(JSON.stringify([grant.method, grant.key, grant.expiresAt, ...fields])).digest('base64url');
  }
}
