import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Location as WireLocation } from '../../protocol/tasks.js';
import type { Blob } from '../blobs.js';
import type { S3Presigner } from '../s3-presign.js';
import { keepAliveRequest } from '../../shared/http-client.js';
import { ItemError } from './item-error.js';
import { formatUri, isUnder, type Location } from './uri.js';

/** What identifies one version of an object: its ETag in S3, size + mtime + inode on disk. */
export interface ObjectInfo {
  fingerprint: string;
  size: number;
  /** A file's path as the file system resolved it (checked against the roots): reach reads it without resolving again. */
  resolvedPath?: string;
}

export interface ListedObject {
  location: Location;
  /** The item's name when the object's path does not give it (an upload session's declared file name). */
  name?: string;
  /** Where to resume the listing after this object (opaque to callers). */
  cursor: string;
  /** Its version as the listing saw it, where the listing tells (S3's ETag and size, a file's stat). */
  version?: ObjectInfo;
}

/**
 * How a worker reaches an item's object: a wire Location it uses itself (presigned URL, shared file),
 * or a Blob the master serves for it (streamed, never parsed or held whole).
 */
export type WorkerReach = { direct: WireLocation } | { served: Blob };

/** Reading, writing and listing of job inputs and outputs under the allowed roots, for one URI scheme. */
export interface ObjectStore {
  /** undefined when there is no object. */
  stat(location: Location): Promise<ObjectInfo | undefined>;
  /**
   * The version a listing saw, made ready to read when the item runs, with what must be checked then
   * (a file's resolved path against the roots); no call to storage where none is needed (S3).
   * Stores whose listing gives no versions have none. Undefined when the object is gone, as for `stat`.
   */
  readyListed?(location: Location, listed: ObjectInfo): Promise<ObjectInfo | undefined>;
  readStream(location: Location): Promise<Readable>;
  /** Writes a local file as the whole object (replacing any); a reader never sees half of it. */
  write(location: Location, data: { file: string }): Promise<void>;
  /** Every object under the prefix, one page at a time, resuming after `cursor`. */
  list(prefix: Location, cursor?: string): AsyncIterable<ListedObject>;
  /**
   * Where a worker reads (`get`, pinned to the version `stat` saw where storage can) or writes (`put`,
   * at most `maxBytes`) the object. Called per lease: presigned URLs expire.
   */
  reach(location: Location, access: { get: ObjectInfo } | { put: { maxBytes: number } }, worker: { colocated: boolean }): Promise<WorkerReach>;
  /** The version of an output a worker has just written (recorded for skip-if-exists): the ETag its PUT got, or the file's own. */
  writtenVersion(location: Location, etag: string | undefined): Promise<string>;
}

/** S3 keys asked for per list request (the API's maximum). */
const listPageSize = 1000;

type S3Sdk = typeof import('@aws-sdk/client-s3') & Pick<typeof import('../s3-presign.js'), 'S3Presigner'>;
interface S3Connection {
  sdk: S3Sdk;
  client: S3Client;
  presigner: S3Presigner;
}
let s3Sdk: Promise<S3Sdk> | undefined;
/** The AWS SDK, loaded by the first s3:// job: every master start would otherwise pay for it. */
const loadS3Sdk = (): Promise<S3Sdk> =>
  (s3Sdk ??= Promise.all([import('@aws-sdk/client-s3'), import('../s3-presign.js')]).then(([client, presign]) => ({ ...client, S3Presigner: presign.S3Presigner })));

/**
 * Objects in S3 buckets (the SDK loaded on first use). The SDK reads credentials and region as usual; with a custom endpoint
 * (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, e.g. an S3-compatible server) it uses path-style URLs,
 * which such servers expect.
 */
export class S3Objects implements ObjectStore {
  private connection: Promise<S3Connection> | undefined;

  /** `client`: a particular server's (tests); by default the SDK's own, made on first use. */
  constructor(private readonly givenClient?: S3Client) {}

  private connect(): Promise<S3Connection> {
    return (this.connection ??= loadS3Sdk().then((sdk) => {
      const client = this.givenClient ?? defaultS3Client(sdk);
      return { sdk, client, presigner: new sdk.S3Presigner(client) };
    }));
  }

  /**
   * A presigned HEAD on a keep-alive node:http agent: the SDK's HeadObject (its whole middleware stack)
   * cost about 3x as much CPU per item, fetch (undici) about 2.5x (docs/performance.md). 4xx answers
   * other than 408 and 429 are permanent (as the SDK's errors are for errorKindOf), others and network
   * errors transient; the caller retries those.
   */
  async stat(location: Location): Promise<ObjectInfo | undefined> {
    const { bucket, key } = s3Of(location);
    const { presigner } = await this.connect();
    const { status, headers } = await head(await presigner.url('HeadObject', bucket, key));
    if (status === 404) return undefined;
    if (status < 200 || status >= 300) {
      const retryable = status >= 500 || status === 408 || status === 429;
      throw new ItemError(retryable ? 'transient' : 'permanent', `reading the version of ${formatUri(location)}: storage answered ${status}`);
    }
    return { fingerprint: String(headers.etag ?? ''), size: Number(headers['content-length'] ?? 0) };
  }

  async readStream(location: Location): Promise<Readable> {
    const { Body } = await this.get(location);
    return Body instanceof Readable ? Body : Readable.fromWeb(Body!.transformToWebStream() as never);
  }

  private async get(location: Location) {
    const { bucket, key } = s3Of(location);
    const { sdk, client } = await this.connect();
    try {
      const answer = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
      if (!answer.Body) throw new ItemError('transient', `${formatUri(location)} came back without a body`);
      return answer;
    } catch (error) {
      if ((error as Error).name === 'NoSuchKey') throw new ItemError('permanent', `${formatUri(location)} does not exist`);
      throw error;
    }
  }

  async write(location: Location, data: { file: string }): Promise<void> {
    const { bucket, key } = s3Of(location);
    const { size } = await fs.stat(data.file);
    const { sdk, client } = await this.connect();
    await client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(data.file), ContentLength: size }));
  }

  /**
   * Presigned URLs, one object, one method, presignedSeconds: workers need no AWS permissions. A read
   * sends If-Match with the ETag the content key was made from (the listing's, or the HEAD's), so a
   * changed object is not processed under the old key: S3 answers the worker's GET with 412, and the
   * runner, finding the ETag changed, fails the item naming its key (BatchRunner.checkListedVersion).
   */
  async reach(location: Location, access: { get: ObjectInfo } | { put: { maxBytes: number } }): Promise<WorkerReach> {
    const { bucket, key } = s3Of(location);
    const { presigner } = await this.connect();
    const url = await presigner.url('get' in access ? 'GetObject' : 'PutObject', bucket, key);
    const pin = 'get' in access && access.get.fingerprint ? { headers: { 'if-match': access.get.fingerprint } } : {};
    return { direct: { via: 'url', url, ...pin } };
  }

  async writtenVersion(location: Location, etag: string | undefined): Promise<string> {
    return etag ?? (await this.stat(location))?.fingerprint ?? '';
  }

  /** The listed ETag pins the worker's GET (reach): nothing to ask S3 before. */
  async readyListed(_location: Location, listed: ObjectInfo): Promise<ObjectInfo> {
    return listed;
  }

  async *list(prefix: Location, cursor?: string): AsyncIterable<ListedObject> {
    const { bucket, key } = s3Of(prefix);
    const { sdk, client } = await this.connect();
    let token: string | undefined;
    do {
      const page = await client.send(
        new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: key, MaxKeys: listPageSize, ContinuationToken: token, ...(token || !cursor ? {} : { StartAfter: cursor }) }),
      );
      for (const object of page.Contents ?? []) {
        if (!object.Key || object.Key.endsWith('/')) continue;
        // The page carries each object's ETag and size: the item needs no HEAD of its own when it runs.
        const version = object.ETag ? { version: { fingerprint: object.ETag, size: object.Size ?? 0 } } : {};
        yield { location: { scheme: 's3', bucket, key: object.Key }, cursor: object.Key, ...version };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
}

/** A HEAD that does not answer within this long is a transient failure (the caller retries it). */
const headTimeoutMs = 30_000;

/** Sends a HEAD to a presigned URL; its status and headers (no body comes with a HEAD). */
async function head(url: string): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  const timeout = { ms: headTimeoutMs, error: () => new ItemError('transient', `HEAD ${new URL(url).pathname} did not answer within ${headTimeoutMs / 1000} s`) };
  const response = await keepAliveRequest(url, { method: 'HEAD', timeout });
  response.resume();
  return { status: response.statusCode ?? 0, headers: response.headers };
}

function defaultS3Client(sdk: S3Sdk): S3Client {
  const customEndpoint = Boolean(process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL);
  // Checksums only where S3 requires them: S3-compatible servers do not all read the newer trailers.
  return new sdk.S3Client({ forcePathStyle: customEndpoint, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
}

function s3Of(location: Location): { bucket: string; key: string } {
  if (location.scheme !== 's3') throw new Error(`${formatUri(location)} is not an S3 location`);
  return location;
}

/**
 * Files under the allowed roots. A path is checked again after the file system resolves it, so a
 * symbolic link inside a root that points outside every root is refused (per item, permanently).
 */
export class FileObjects implements ObjectStore {
  /** Roots as the file system resolves them (computed once; a root that does not exist yet is taken as written). */
  private resolvedRoots: Promise<Location[]> | undefined;

  constructor(private readonly roots: readonly Location[]) {}

  private async checkResolved(location: Location, resolvedPath: string): Promise<void> {
    this.resolvedRoots ??= Promise.all(
      this.roots.map(async (root) => (root.scheme === 'file' ? { scheme: 'file' as const, path: await fs.realpath(root.path).catch(() => root.path) } : root)),
    );
    const resolved: Location = { scheme: 'file', path: resolvedPath };
    if (!(await this.resolvedRoots).some((root) => isUnder(resolved, root))) {
      throw new ItemError('permanent', `${formatUri(location)} resolves to ${resolvedPath}, outside every allowed root (a symbolic link out of its root)`);
    }
  }

  /** The real path of an existing file, checked against the roots. */
  private async resolveExisting(location: Location): Promise<string> {
    const real = await fs.realpath(fileOf(location));
    await this.checkResolved(location, real);
    return real;
  }

  /** The resolved path, or undefined when nothing is there. */
  private async resolveIfExists(location: Location): Promise<string | undefined> {
    try {
      return await this.resolveExisting(location);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async stat(location: Location): Promise<ObjectInfo | undefined> {
    const real = await this.resolveIfExists(location);
    if (real === undefined) return undefined;
    const stats = await fs.stat(real);
    if (!stats.isFile()) throw new ItemError('permanent', `${formatUri(location)} is not a file`);
    return { ...fileVersion(stats), resolvedPath: real };
  }

  /**
   * The path is resolved and checked against the roots when the item runs, not when it was listed: a
   * link put in its place meanwhile cannot lead out of the roots. Its version is the listing's (one stat less).
   */
  async readyListed(location: Location, listed: ObjectInfo): Promise<ObjectInfo | undefined> {
    const real = await this.resolveIfExists(location);
    return real === undefined ? undefined : { ...listed, resolvedPath: real };
  }

  async readStream(location: Location): Promise<Readable> {
    return createReadStream(await this.resolveExisting(location));
  }

  async write(location: Location, data: { file: string }): Promise<void> {
    await replaceFile(await this.writablePath(location), (partial) => fs.copyFile(data.file, partial));
  }

  /**
   * A co-located worker gets the file itself (the real path, checked against the roots: it reads no
   * symbolic link and writes beside its target, then renames). Any other worker goes through the
   * master, which streams the file as it is, or streams the body into a file beside the target and
   * renames it: the master never holds an image whole.
   */
  async reach(location: Location, access: { get: ObjectInfo } | { put: { maxBytes: number } }, worker: { colocated: boolean }): Promise<WorkerReach> {
    if ('get' in access) {
      const real = access.get.resolvedPath ?? (await this.resolveExisting(location));
      return worker.colocated ? { direct: { via: 'file', path: real } } : { served: { read: async () => createReadStream(real) } };
    }
    const target = await this.writablePath(location);
    if (worker.colocated) return { direct: { via: 'file', path: target } };
    const { maxBytes } = access.put;
    return { served: { write: (body) => replaceFile(target, (partial) => pipeline(body, bounded(maxBytes), createWriteStream(partial))) } };
  }

  async writtenVersion(location: Location): Promise<string> {
    const info = await this.stat(location);
    if (!info) throw new ItemError('transient', `${formatUri(location)} is missing right after it was written`);
    return info.fingerprint;
  }

  /** The target's path with its folder created and resolved, checked against the roots. */
  private async writablePath(location: Location): Promise<string> {
    const target = fileOf(location);
    const dir = path.dirname(target);
    await fs.mkdir(dir, { recursive: true });
    const real = path.join(await fs.realpath(dir), path.basename(target));
    await this.checkResolved(location, real);
    return real;
  }

  /**
   * Walks the folder depth-first with fs.opendir, which reads directory entries a batch at a time, so
   * a folder of 100,000 files is never held whole. The cursor counts the files already yielded: an
   * unchanged folder lists in the same order again. Each file's version comes from one stat here, so
   * its item needs none when it runs; an entry that is not a file once links are followed gets none,
   * and its item reads (and refuses) it then. Roots are checked when the item runs (reach).
   */
  async *list(prefix: Location, cursor?: string): AsyncIterable<ListedObject> {
    let skip = cursor === undefined ? 0 : Number(cursor);
    let yielded = 0;
    const walk = async function* (dir: string): AsyncIterable<string> {
      for await (const entry of await fs.opendir(dir)) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) yield* walk(full);
        else if (entry.isFile() || entry.isSymbolicLink()) yield full;
      }
    };
    for await (const full of walk(fileOf(prefix))) {
      yielded += 1;
      if (skip > 0) {
        skip -= 1;
        continue;
      }
      const stats = await fs.stat(full).catch(() => undefined);
      yield { location: { scheme: 'file', path: full }, cursor: String(yielded), ...(stats?.isFile() ? { version: fileVersion(stats) } : {}) };
    }
  }
}

/** A file's version: what changes when it is rewritten or replaced. */
function fileVersion(stats: { size: number; mtimeMs: number; ino: number }): ObjectInfo {
  return { fingerprint: `${stats.size}:${stats.mtimeMs}:${stats.ino}`, size: stats.size };
}

/** Writes beside the target, then renames over it: a reader sees the old file or the new one, whole. */
async function replaceFile(target: string, write: (partial: string) => Promise<unknown>): Promise<void> {
  const partial = `${target}.${randomBytes(4).toString('hex')}.partial`;
  try {
    await write(partial);
    await fs.rename(partial, target);
  } finally {
    await fs.rm(partial, { force: true });
  }
}

/** Passes a stream through, failing it once more than maxBytes went by (a worker cannot fill the disk). */
function bounded(maxBytes: number) {
  return async function* (source: AsyncIterable<Buffer>) {
    let total = 0;
    for await (const chunk of source) {
      total += chunk.length;
      if (total > maxBytes) throw new ItemError('permanent', `the result exceeds ${maxBytes} bytes`);
      yield chunk;
    }
  };
}

function fileOf(location: Location): string {
  if (location.scheme !== 'file') throw new Error(`${formatUri(location)} is not a local path`);
  return location.path;
}

/** The object store for a location's scheme. */
export interface ObjectStores {
  for(location: Location): ObjectStore;
}

export function objectStores(files: FileObjects, s3: () => S3Objects, staged: ObjectStore): ObjectStores {
  let s3Objects: S3Objects | undefined;
  return { for: (location) => (location.scheme === 'file' ? files : location.scheme === 'upload' ? staged : (s3Objects ??= s3())) };
}
