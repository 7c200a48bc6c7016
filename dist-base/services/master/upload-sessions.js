import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { openDatabase } from './database.js';
import { HttpError } from '../shared/http-error.js';
import { presignedSeconds } from './storage.js';
import { displayName } from './upload.js';
/** Where a session's files are staged in the master's storage until its job is gone. */
export const stagedPrefix = (session) => `uploads/${session}`;
export const stagedKey = (session, index) => `uploads/${session}/${index}`;
/**
 * Sessions kept parsed in memory, the most recently used: each PUT of a session's files and each item
 * of its job (stat, reach, list) reads the session's files, and re-reading and parsing a row of 1,000
 * files (~100 kB of JSON) per request would cost the master more than the request itself.
 */
const cachedSessions = 64;
/** S3 takes at most 10,000 parts per object: a larger file gets larger parts. */
const maxParts = 10_000;
/** A worker on another machine: the URLs a client gets are the ones that do not need the master's disk. */
const remote = { colocated: false };
/**
 * Upload sessions: a client declares files, sends their bytes where the session says and then creates a
 * job from it. With S3 the URLs are presigned (single PUT, or one UploadPart per part for files over
 * DIPS_UPLOAD_PART_BYTES), so the bytes go from the client to the bucket. With local storage they are
 * signed URLs of the storage service (services/storage/), each for one file of its declared size,
 * writing it once: a client treats both alike, "PUT these bytes to this URL with these headers", and
 * neither passes the bytes through the master. Sessions are rows in their own SQLite file and survive
 * a restart. A session lives as long as its URLs (presignedSeconds); sweep() removes expired ones and
 * those whose job is gone, with their bytes.
 */
export class UploadSessions {
    storage;
    limits;
    logger;
    now;
    db;
    /** Sessions a job is being created from right now: a second request for one waits for nothing and is refused. */
    becomingJobs = new Set();
    cache = new Map();
    constructor(storage, dataDir, limits, logger, now = Date.now) {
        this.storage = storage;
        this.limits = limits;
        this.logger = logger;
        this.now = now;
        mkdirSync(dataDir, { recursive: true });
        this.db = openDatabase(path.join(dataDir, 'uploads.sqlite'));
        this.db.exec(`CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL,
        job_id TEXT,
        files TEXT NOT NULL
      );`);
    }
    /** Opens a session: one row, and per file where its bytes go (S3 calls are presigning only, plus one CreateMultipartUpload per large file). */
    async create(body) {
        const { maxFiles, maxUploadBytes, maxUploadSessions } = this.limits;
        if (body.files.length > maxFiles)
            throw new HttpError(413, 'too_many_files', `the session declares ${body.files.length} files; at most ${maxFiles} per session (DIPS_MAX_FILES)`);
        for (const [index, file] of body.files.entries()) {
            if (file.size > maxUploadBytes) {
                throw new HttpError(413, 'file_too_large', `file ${index} "${file.name}" declares ${file.size} bytes; the limit is ${maxUploadBytes} (DIPS_MAX_UPLOAD_BYTES)`);
            }
        }
        const open = this.db.prepare('SELECT COUNT(*) AS n FROM sessions WHERE job_id IS NULL AND expires_at > ?').get(this.now()).n;
        if (open >= maxUploadSessions) {
            throw new HttpError(429, 'too_many_sessions', `${open} upload sessions are open, the limit (DIPS_MAX_UPLOAD_SESSIONS=${maxUploadSessions}); create a job from one or let it expire`, 60);
        }
        const id = randomUUID();
        const expiresAt = this.now() + presignedSeconds * 1000;
        const staged = [];
        const files = [];
        try {
            for (const [index, declared] of body.files.entries()) {
                const name = displayName(declared.name, index);
                const { parts, upload } = await this.targets(id, index, declared.size, expiresAt);
                staged.push({ name, size: declared.size, ...(upload ? { upload, parts: parts.length } : {}) });
                files.push({ index, name, size: declared.size, parts, ...(upload ? { complete: `/v1/uploads/${id}/files/${index}/complete` } : {}) });
            }
        }
        catch (error) {
            await this.abort(id, staged);
            throw error;
        }
        this.db.prepare('INSERT INTO sessions (id, expires_at, files) VALUES (?, ?, ?)').run(id, expiresAt, JSON.stringify(staged));
        return { id, expiresAt: new Date(expiresAt).toISOString(), files };
    }
    /** Where file `index` goes: one signed or presigned PUT, or (S3, a file over the part size) presigned parts. */
    async targets(id, index, size, expiresAt) {
        const key = stagedKey(id, index);
        const partBytes = Math.max(this.limits.uploadPartBytes, Math.ceil(size / maxParts));
        // Local storage has no parts (openParts answers no upload): one PUT whatever the size.
        const upload = size > partBytes ? await this.storage.openParts(key) : undefined;
        if (!upload)
            return { parts: [{ url: await this.storage.uploadUrl(key, size, expiresAt), headers: {}, offset: 0, size }] };
        const parts = [];
        for (let offset = 0, number = 1; offset < size; offset += partBytes, number++) {
            const length = Math.min(partBytes, size - offset);
            const part = await this.storage.locatePart(key, upload, { number, range: { start: offset, end: offset + length - 1 } }, remote);
            if (part?.via !== 'url')
                throw new Error(`storage gave no URL for part ${number} of ${key}`);
            parts.push({ url: part.url, headers: {}, offset, size: length });
        }
        return { parts, ...(upload ? { upload } : {}) };
    }
    /** Completes a multipart file from its parts' ETags (metadata only; S3 assembles the parts). */
    async complete(id, index, etags) {
        const session = this.openSession(id);
        const file = session.files[index];
        if (!file)
            throw new HttpError(404, 'upload_file_not_found', `session ${id} has no file ${index}`);
        const what = `file ${index} "${file.name}"`;
        if (!file.upload)
            throw new HttpError(409, 'not_multipart', `${what} is sent with one PUT; there is nothing to complete`);
        if (etags.length !== file.parts)
            throw new HttpError(400, 'wrong_parts', `${what} has ${file.parts} parts; ${etags.length} ETags were given`);
        if (!file.completed) {
            try {
                await this.storage.closeParts(stagedKey(id, index), file.upload, etags);
            }
            catch (error) {
                const status = error.$metadata?.httpStatusCode;
                if (status === undefined || status >= 500)
                    throw error;
                throw new HttpError(400, 'bad_parts', `${what}: storage refused the parts: ${error.message}`);
            }
            const files = session.files.map((staged, at) => (at === index ? { ...staged, completed: true } : staged));
            this.db.prepare('UPDATE sessions SET files = ? WHERE id = ?').run(JSON.stringify(files), id);
            session.files = files;
        }
        return { index, name: file.name, size: file.size };
    }
    /**
     * Makes the one job of a session: checks it is ready, lets `create` make the job, then marks the
     * session as that job's. One request at a time per session (409 for a concurrent one), so two bodies
     * cannot both take the same files.
     */
    async becomeJob(id, create) {
        if (this.becomingJobs.has(id))
            throw new HttpError(409, 'upload_busy', `a job is being created from upload session ${id} by another request`);
        this.becomingJobs.add(id);
        try {
            const files = await this.checkReady(id);
            // Before create(): the job's listing stats and reaches the files as soon as it starts, and must see the versions checked.
            this.db.prepare('UPDATE sessions SET files = ? WHERE id = ?').run(JSON.stringify(files), id);
            this.session(id).files = files;
            const job = await create();
            this.db.prepare('UPDATE sessions SET job_id = ? WHERE id = ? AND job_id IS NULL').run(job.id, id);
            this.cache.delete(id); // read again: the row as written
            return job;
        }
        finally {
            this.becomingJobs.delete(id);
        }
    }
    /**
     * Before a job is created from the session: every file is there with its declared size (one listing
     * of the session's prefix, no bytes), multipart files completed; answers the files with the versions
     * seen. A 4xx names every file at fault; nothing is consumed, so the client can send what is missing
     * and try again.
     */
    async checkReady(id) {
        // Copies: the versions seen become the session's when becomeJob writes them.
        const files = this.openSession(id).files.map((file) => ({ ...file }));
        const stored = await this.storage.listObjects(stagedPrefix(id));
        const problems = files.map((file, index) => {
            const what = `file ${index} "${file.name}"`;
            if (file.upload && !file.completed)
                return { missing: true, text: `${what} is sent in parts that were not completed (POST /v1/uploads/${id}/files/${index}/complete)` };
            const object = stored.get(stagedKey(id, index));
            if (object === undefined)
                return { missing: true, text: `${what} has not arrived` };
            if (object.size !== file.size)
                return { missing: false, text: `${what} holds ${object.size} bytes; the session declared ${file.size}` };
            if (object.etag)
                file.etag = object.etag;
            return undefined;
        });
        const found = problems.filter((problem) => problem !== undefined);
        if (found.length === 0)
            return files;
        const text = `upload session ${id}: ${found.map((problem) => problem.text).join('; ')}`;
        if (found.some((problem) => !problem.missing))
            throw new HttpError(422, 'upload_wrong_size', text);
        throw new HttpError(409, 'upload_incomplete', text);
    }
    /** The declared files of a session (for listing a job's items), whatever its state. */
    files(id) {
        return this.session(id)?.files ?? [];
    }
    /**
     * Removes sessions nobody will use: expired before a job was created from them, or whose job was
     * deleted (retention, purge). Their bytes go with them, and their unfinished multipart uploads. A
     * deleted job's session keeps its row until its URLs expire, its bytes deleted at every sweep: a
     * URL still valid could store a file again, and nothing would delete it once the row was gone.
     */
    async sweep(jobs) {
        const rows = this.db.prepare('SELECT * FROM sessions WHERE (job_id IS NULL AND expires_at <= ?) OR job_id IS NOT NULL').all(this.now());
        let removed = 0;
        for (const row of rows) {
            if (row.job_id !== null && jobs.exists(row.job_id))
                continue;
            // A master stopped between creating the job and marking its session: the job owns the files.
            const reader = row.job_id === null ? jobs.readingSession(row.id) : undefined;
            if (reader !== undefined) {
                this.db.prepare('UPDATE sessions SET job_id = ? WHERE id = ?').run(reader, row.id);
                this.cache.delete(row.id);
                continue;
            }
            await this.abort(row.id, JSON.parse(row.files));
            if (row.expires_at > this.now())
                continue;
            this.db.prepare('DELETE FROM sessions WHERE id = ?').run(row.id);
            this.cache.delete(row.id);
            removed += 1;
            this.logger.info({ session: row.id, job: row.job_id ?? undefined }, row.job_id ? 'upload session of a deleted job removed' : 'expired upload session removed');
        }
        return removed;
    }
    async abort(id, files) {
        for (const [index, file] of files.entries()) {
            if (!file.upload || file.completed)
                continue;
            // S3-compatible servers without AbortMultipartUpload leave the parts; the object never appears.
            await this.storage.abortParts(stagedKey(id, index), file.upload).catch((error) => this.logger.warn({ session: id, file: index, err: error }, 'multipart upload not aborted'));
        }
        await this.storage.deletePrefix(stagedPrefix(id));
    }
    /** The session from the cache, or its row read and parsed (and cached, the least recently used one leaving). */
    session(id) {
        const cached = this.cache.get(id);
        if (cached) {
            this.cache.delete(id);
            this.cache.set(id, cached);
            return cached;
        }
        const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id);
        if (!row)
            return undefined;
        const session = { expiresAt: row.expires_at, jobId: row.job_id, files: JSON.parse(row.files) };
        this.cache.set(id, session);
        if (this.cache.size > cachedSessions)
            this.cache.delete(this.cache.keys().next().value);
        return session;
    }
    /** A session that still takes bytes and can become a job: 404 unknown, 409 used, 410 expired. */
    openSession(id) {
        const session = this.session(id);
        if (!session)
            throw new HttpError(404, 'upload_not_found', `no upload session with id "${id}"`);
        if (session.jobId !== null)
            throw new HttpError(409, 'upload_used', `upload session ${id} already became job ${session.jobId}`);
        if (this.now() > session.expiresAt)
            throw new HttpError(410, 'upload_expired', `upload session ${id} expired at ${new Date(session.expiresAt).toISOString()}; open a new one`);
        return session;
    }
    close() {
        this.db.close();
    }
}
//# sourceMappingURL=upload-sessions.js.map