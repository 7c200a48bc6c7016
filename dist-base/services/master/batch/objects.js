import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { keepAliveRequest } from '../../shared/http-client.js';
import { ItemError } from './item-error.js';
import { formatUri, isUnder } from './uri.js';
/** S3 keys asked for per list request (the API's maximum). */
const listPageSize = 1000;
let s3Sdk;
/** The AWS SDK, loaded by the first s3:// job: every master start would otherwise pay for it. */
const loadS3Sdk = () => (s3Sdk ??= Promise.all([import('@aws-sdk/client-s3'), import('../s3-presign.js')]).then(([client, presign]) => ({ ...client, S3Presigner: presign.S3Presigner })));
/**
 * Objects in S3 buckets (the SDK loaded on first use). The SDK reads credentials and region as usual; with a custom endpoint
 * (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, e.g. an S3-compatible server) it uses path-style URLs,
 * which such servers expect.
 */
export class S3Objects {
    givenClient;
    connection;
    /** `client`: a particular server's (tests); by default the SDK's own, made on first use. */
    constructor(givenClient) {
        this.givenClient = givenClient;
    }
    connect() {
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
    async stat(location) {
        const { bucket, key } = s3Of(location);
        const { presigner } = await this.connect();
        const { status, headers } = await head(await presigner.url('HeadObject', bucket, key));
        if (status === 404)
            return undefined;
        if (status < 200 || status >= 300) {
            const retryable = status >= 500 || status === 408 || status === 429;
            throw new ItemError(retryable ? 'transient' : 'permanent', `reading the version of ${formatUri(location)}: storage answered ${status}`);
        }
        return { fingerprint: String(headers.etag ?? ''), size: Number(headers['content-length'] ?? 0) };
    }
    async readStream(location) {
        const { Body } = await this.get(location);
        return Body instanceof Readable ? Body : Readable.fromWeb(Body.transformToWebStream());
    }
    async get(location) {
        const { bucket, key } = s3Of(location);
        const { sdk, client } = await this.connect();
        try {
            const answer = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
            if (!answer.Body)
                throw new ItemError('transient', `${formatUri(location)} came back without a body`);
            return answer;
        }
        catch (error) {
            if (error.name === 'NoSuchKey')
                throw new ItemError('permanent', `${formatUri(location)} does not exist`);
            throw error;
        }
    }
    async write(location, data) {
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
    async reach(location, access) {
        const { bucket, key } = s3Of(location);
        const { presigner } = await this.connect();
        const url = await presigner.url('get' in access ? 'GetObject' : 'PutObject', bucket, key);
        const pin = 'get' in access && access.get.fingerprint ? { headers: { 'if-match': access.get.fingerprint } } : {};
        return { direct: { via: 'url', url, ...pin } };
    }
    async writtenVersion(location, etag) {
        return etag ?? (await this.stat(location))?.fingerprint ?? '';
    }
    /** The listed ETag pins the worker's GET (reach): nothing to ask S3 before. */
    async readyListed(_location, listed) {
        return listed;
    }
    async *list(prefix, cursor) {
        const { bucket, key } = s3Of(prefix);
        const { sdk, client } = await this.connect();
        let token;
        do {
            const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: key, MaxKeys: listPageSize, ContinuationToken: token, ...(token || !cursor ? {} : { StartAfter: cursor }) }));
            for (const object of page.Contents ?? []) {
                if (!object.Key || object.Key.endsWith('/'))
                    continue;
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
async function head(url) {
    const timeout = { ms: headTimeoutMs, error: () => new ItemError('transient', `HEAD ${new URL(url).pathname} did not answer within ${headTimeoutMs / 1000} s`) };
    const response = await keepAliveRequest(url, { method: 'HEAD', timeout });
    response.resume();
    return { status: response.statusCode ?? 0, headers: response.headers };
}
function defaultS3Client(sdk) {
    const customEndpoint = Boolean(process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL);
    // Checksums only where S3 requires them: S3-compatible servers do not all read the newer trailers.
    return new sdk.S3Client({ forcePathStyle: customEndpoint, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
}
function s3Of(location) {
    if (location.scheme !== 's3')
        throw new Error(`${formatUri(location)} is not an S3 location`);
    return location;
}
/**
 * Files under the allowed roots. A path is checked again after the file system resolves it, so a
 * symbolic link inside a root that points outside every root is refused (per item, permanently).
 */
export class FileObjects {
    roots;
    /** Roots as the file system resolves them (computed once; a root that does not exist yet is taken as written). */
    resolvedRoots;
    constructor(roots) {
        this.roots = roots;
    }
    async checkResolved(location, resolvedPath) {
        this.resolvedRoots ??= Promise.all(this.roots.map(async (root) => (root.scheme === 'file' ? { scheme: 'file', path: await fs.realpath(root.path).catch(() => root.path) } : root)));
        const resolved = { scheme: 'file', path: resolvedPath };
        if (!(await this.resolvedRoots).some((root) => isUnder(resolved, root))) {
            throw new ItemError('permanent', `${formatUri(location)} resolves to ${resolvedPath}, outside every allowed root (a symbolic link out of its root)`);
        }
    }
    /** The real path of an existing file, checked against the roots. */
    async resolveExisting(location) {
        const real = await fs.realpath(fileOf(location));
        await this.checkResolved(location, real);
        return real;
    }
    /** The resolved path, or undefined when nothing is there. */
    async resolveIfExists(location) {
        try {
            return await this.resolveExisting(location);
        }
        catch (error) {
            if (error.code === 'ENOENT')
                return undefined;
            throw error;
        }
    }
    async stat(location) {
        const real = await this.resolveIfExists(location);
        if (real === undefined)
            return undefined;
        const stats = await fs.stat(real);
        if (!stats.isFile())
            throw new ItemError('permanent', `${formatUri(location)} is not a file`);
        return { ...fileVersion(stats), resolvedPath: real };
    }
    /**
     * The path is resolved and checked against the roots when the item runs, not when it was listed: a
     * link put in its place meanwhile cannot lead out of the roots. Its version is the listing's (one stat less).
     */
    async readyListed(location, listed) {
        const real = await this.resolveIfExists(location);
        return real === undefined ? undefined : { ...listed, resolvedPath: real };
    }
    async readStream(location) {
        return createReadStream(await this.resolveExisting(location));
    }
    async write(location, data) {
        await replaceFile(await this.writablePath(location), (partial) => fs.copyFile(data.file, partial));
    }
    /**
     * A co-located worker gets the file itself (the real path, checked against the roots: it reads no
     * symbolic link and writes beside its target, then renames). Any other worker goes through the
     * master, which streams the file as it is, or streams the body into a file beside the target and
     * renames it: the master never holds an image whole.
     */
    async reach(location, access, worker) {
        if ('get' in access) {
            const real = access.get.resolvedPath ?? (await this.resolveExisting(location));
            return worker.colocated ? { direct: { via: 'file', path: real } } : { served: { read: async () => createReadStream(real) } };
        }
        const target = await this.writablePath(location);
        if (worker.colocated)
            return { direct: { via: 'file', path: target } };
        const { maxBytes } = access.put;
        return { served: { write: (body) => replaceFile(target, (partial) => pipeline(body, bounded(maxBytes), createWriteStream(partial))) } };
    }
    async writtenVersion(location) {
        const info = await this.stat(location);
        if (!info)
            throw new ItemError('transient', `${formatUri(location)} is missing right after it was written`);
        return info.fingerprint;
    }
    /** The target's path with its folder created and resolved, checked against the roots. */
    async writablePath(location) {
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
    async *list(prefix, cursor) {
        let skip = cursor === undefined ? 0 : Number(cursor);
        let yielded = 0;
        const walk = async function* (dir) {
            for await (const entry of await fs.opendir(dir)) {
                const full = path.join(dir, entry.name);
                if (entry.isDirectory())
                    yield* walk(full);
                else if (entry.isFile() || entry.isSymbolicLink())
                    yield full;
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
function fileVersion(stats) {
    return { fingerprint: `${stats.size}:${stats.mtimeMs}:${stats.ino}`, size: stats.size };
}
/** Writes beside the target, then renames over it: a reader sees the old file or the new one, whole. */
async function replaceFile(target, write) {
    const partial = `${target}.${randomBytes(4).toString('hex')}.partial`;
    try {
        await write(partial);
        await fs.rename(partial, target);
    }
    finally {
        await fs.rm(partial, { force: true });
    }
}
/** Passes a stream through, failing it once more than maxBytes went by (a worker cannot fill the disk). */
function bounded(maxBytes) {
    return async function* (source) {
        let total = 0;
        for await (const chunk of source) {
            total += chunk.length;
            if (total > maxBytes)
                throw new ItemError('permanent', `the result exceeds ${maxBytes} bytes`);
            yield chunk;
        }
    };
}
function fileOf(location) {
    if (location.scheme !== 'file')
        throw new Error(`${formatUri(location)} is not a local path`);
    return location.path;
}
export function objectStores(files, s3, staged) {
    let s3Objects;
    return { for: (location) => (location.scheme === 'file' ? files : location.scheme === 'upload' ? staged : (s3Objects ??= s3())) };
}
//# sourceMappingURL=objects.js.map