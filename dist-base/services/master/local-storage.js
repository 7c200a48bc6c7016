import { constants, createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { UrlSigner } from '../storage/signed-urls.js';
import { checkKey, presignedSeconds } from './storage.js';
/** Files a listing stats at once: a directory of thousands of files in rounds, not thousands of requests queued on libuv's 4 threads. */
const parallelStats = 64;
/** Storage in a directory of the local file system (the default). */
export class LocalStorage {
    root;
    now;
    /** Directories known to exist: a job's output directory is made once, not once per image. */
    made = new Set();
    signer;
    /** True when no storage service serves the signed URLs: the master mounts their routes (app.ts). */
    servedByMaster;
    serviceUrl;
    /** The storage of a data directory (its `files/`), signing with the directory's key: the master's and its storage service's alike. */
    static inDataDir(dataDir, serviceUrl) {
        return new LocalStorage(path.join(dataDir, 'files'), { signer: UrlSigner.forDataDir(dataDir), serviceUrl });
    }
    constructor(root, access, now = Date.now) {
        this.root = root;
        this.now = now;
        this.signer = access.signer;
        this.servedByMaster = access.serviceUrl === undefined;
        this.serviceUrl = access.serviceUrl?.replace(/\/$/, '') ?? '';
    }
    async mkdirOnce(dir) {
        if (this.made.has(dir))
            return;
        await fs.mkdir(dir, { recursive: true });
        this.made.add(dir);
    }
    pathOf(key) {
        return path.join(this.root, checkKey(key));
    }
    async putFile(key, localPath) {
        const target = this.pathOf(key);
        await fs.mkdir(path.dirname(target), { recursive: true });
        try {
            await fs.rename(localPath, target);
        }
        catch (error) {
            if (error.code !== 'EXDEV')
                throw error;
            await fs.copyFile(localPath, target);
            await fs.rm(localPath, { force: true });
        }
    }
    async putStream(key, body) {
        await this.writeThenRename(key, (partial) => pipeline(body, createWriteStream(partial)));
    }
    /** Like putStream, for a key nothing is stored under yet: fails with EEXIST (and keeps what is there) otherwise. */
    async createStream(key, body) {
        await this.writeThenRename(key, (partial) => pipeline(body, createWriteStream(partial)), { replace: false });
    }
    async putBuffer(key, data) {
        await this.writeThenRename(key, (partial) => fs.writeFile(partial, data));
    }
    /**
     * Write then rename so a crash never leaves a half-written object under the final key; without
     * `replace`, a hard link in place of the rename, which fails when the key exists.
     */
    async writeThenRename(key, write, { replace = true } = {}) {
        const target = this.pathOf(key);
        await this.mkdirOnce(path.dirname(target));
        const partial = `${target}.partial-${process.pid}-${Math.random().toString(36).slice(2)}`;
        try {
            await write(partial);
            await (replace ? fs.rename(partial, target) : fs.link(partial, target));
        }
        finally {
            await fs.rm(partial, { force: true });
        }
    }
    async getStream(key, range) {
        const file = this.pathOf(key);
        await fs.access(file);
        return createReadStream(file, range ?? {});
    }
    /** The file of key, for a server that opens it itself (ENOENT then when nothing is stored). */
    pathIfStored(key) {
        return this.pathOf(key);
    }
    getBuffer(key) {
        return fs.readFile(this.pathOf(key));
    }
    /** Files being written (`*.partial-*`) are not objects yet. */
    async listObjects(prefix) {
        const dir = this.pathOf(prefix);
        const sizes = new Map();
        let names;
        try {
            names = await fs.readdir(dir);
        }
        catch (error) {
            if (error.code === 'ENOENT')
                return sizes;
            throw error;
        }
        const objects = names.filter((name) => !name.includes('.partial-'));
        for (let start = 0; start < objects.length; start += parallelStats) {
            const batch = objects.slice(start, start + parallelStats);
            const stats = await Promise.all(batch.map((name) => fs.stat(path.join(dir, name)).catch(() => undefined)));
            for (const [at, stat] of stats.entries())
                if (stat?.isFile())
                    sizes.set(`${prefix}/${batch[at]}`, { size: stat.size });
        }
        return sizes;
    }
    async deleteKeys(keys) {
        await Promise.all(keys.map((key) => fs.rm(this.pathOf(key), { force: true })));
    }
    async deletePrefix(prefix) {
        const dir = this.pathOf(prefix);
        for (const made of this.made)
            if (made === dir || made.startsWith(`${dir}${path.sep}`))
                this.made.delete(made);
        await fs.rm(dir, { recursive: true, force: true });
    }
    async locate(key, access, worker, range) {
        if (!worker.colocated)
            return undefined;
        const file = this.pathOf(key);
        // The worker writes beside the target and renames; the directory must exist for that.
        if (access === 'put')
            await this.mkdirOnce(path.dirname(file));
        return { via: 'file', path: path.resolve(file), ...(range ? { range } : {}) };
    }
    /** Pieces are positioned writes into one file (created sparse by the first), so there is nothing to start or finish. */
    async openParts(key) {
        await this.mkdirOnce(path.dirname(this.pathOf(key)));
        return undefined;
    }
    async locatePart(key, _upload, part, worker) {
        return worker.colocated ? { via: 'file', path: path.resolve(this.pathOf(key)), range: part.range } : undefined;
    }
    async putRange(key, range, body) {
        // Opened without truncating (pieces arrive in any order), created sparse by the first; the stream closes it.
        const file = await fs.open(this.pathOf(key), constants.O_RDWR | constants.O_CREAT, 0o644);
        await pipeline(body, file.createWriteStream({ start: range.start }));
    }
    async closeParts() { }
    async abortParts() { }
    /** A signed PUT of exactly `size` bytes, creating the object (an upload URL writes once). */
    async uploadUrl(key, size, expiresAt) {
        await this.mkdirOnce(path.dirname(this.pathOf(key)));
        return `${this.serviceUrl}${this.signer.path({ method: 'PUT', key: checkKey(key), size, expiresAt })}`;
    }
    /** With a storage service, a signed GET there; without one, the master streams the file itself. */
    async downloadUrl(key, as) {
        if (this.servedByMaster)
            return undefined;
        return `${this.serviceUrl}${this.signer.path({ method: 'GET', key: checkKey(key), name: as.fileName, type: as.contentType, expiresAt: this.now() + presignedSeconds * 1000 })}`;
    }
}
//# sourceMappingURL=local-storage.js.map