import { constants, createReadStream, createWriteStream, type Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ByteRange } from '../image-core/intermediate.js';
import type { Location } from '../protocol/tasks.js';
import { fileStreamBytes } from '../shared/file-streams.js';
import { UrlSigner } from '../storage/signed-urls.js';
import { checkKey, presignedSeconds, type Storage, type StoredObject } from './storage.js';

/** Files a listing stats at once: a directory of thousands of files in rounds, not thousands of requests queued on libuv's 4 threads. */
const parallelStats = 64;

/** Where clients send and fetch local storage's bytes: signed URLs of the storage service, or of the master itself. */
export interface ClientAccess {
  signer: UrlSigner;
  /**
   * The storage service's URL as clients reach it (DIPS_STORAGE_URL; `dips up` and `dips master` start
   * one): uploads and downloads go there, not through the master. Unset: the master serves the signed
   * URLs itself (paths on the master) and streams downloads.
   */
  serviceUrl?: string | undefined;
}

/** Storage in a directory of the local file system (the default). */
export class LocalStorage implements Storage {
  /** Directories known to exist: a job's output directory is made once, not once per image. */
  private readonly made = new Set<string>();
  readonly signer: UrlSigner;
  /** True when no storage service serves the signed URLs: the master mounts their routes (app.ts). */
  readonly servedByMaster: boolean;
  private readonly serviceUrl: string;

  /** The storage of a data directory (its `files/`), signing with the directory's key: the master's and its storage service's alike. */
  static inDataDir(dataDir: string, serviceUrl?: string): LocalStorage {
    return new LocalStorage(path.join(dataDir, 'files'), { signer: UrlSigner.forDataDir(dataDir), serviceUrl });
  }

  constructor(
    private readonly root: string,
    access: ClientAccess,
    private readonly now: () => number = Date.now,
  ) {
    this.signer = access.signer;
    this.servedByMaster = access.serviceUrl === undefined;
    this.serviceUrl = access.serviceUrl?.replace(/\/$/, '') ?? '';
  }

  private async mkdirOnce(dir: string): Promise<void> {
    if (this.made.has(dir)) return;
    await fs.mkdir(dir, { recursive: true });
    this.made.add(dir);
  }

  private pathOf(key: string): string {
    return path.join(this.root, checkKey(key));
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const target = this.pathOf(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    try {
      await fs.rename(localPath, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      await fs.copyFile(localPath, target);
      await fs.rm(localPath, { force: true });
    }
  }

  async putStream(key: string, body: Readable): Promise<void> {
    await this.writeThenRename(key, (partial) => pipeline(body, createWriteStream(partial, { highWaterMark: fileStreamBytes })));
  }

  /** Like putStream, for a key nothing is stored under yet: fails with EEXIST (and keeps what is there) otherwise. */
  async createStream(key: string, body: Readable): Promise<void> {
    await this.writeThenRename(key, (partial) => pipeline(body, createWriteStream(partial, { highWaterMark: fileStreamBytes })), { replace: false });
  }

  async putBuffer(key: string, data: Buffer): Promise<void> {
    await this.writeThenRename(key, (partial) => fs.writeFile(partial, data));
  }

  /**
   * Write then rename so a crash never leaves a half-written object under the final key; without
   * `replace`, a hard link in place of the rename, which fails when the key exists.
   */
  private async writeThenRename(key: string, write: (partial: string) => Promise<void>, { replace = true } = {}): Promise<void> {
    const target = this.pathOf(key);
    await this.mkdirOnce(path.dirname(target));
    const partial = `${target}.partial-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      await write(partial);
      await (replace ? fs.rename(partial, target) : fs.link(partial, target));
    } finally {
      await fs.rm(partial, { force: true });
    }
  }

  async getStream(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.pathOf(key);
    await fs.access(file);
    return createReadStream(file, range ?? {});
  }

  /** The file of key, for a server that opens it itself (ENOENT then when nothing is stored). */
  pathIfStored(key: string): string {
    return this.pathOf(key);
  }

  getBuffer(key: string): Promise<Buffer> {
    return fs.readFile(this.pathOf(key));
  }

  async copyObject(from: string, to: string): Promise<void> {
    const target = this.pathOf(to);
    await this.mkdirOnce(path.dirname(target));
    await fs.link(this.pathOf(from), target);
  }

  /** Files being written (`*.partial-*`) are not objects yet. */
  async listObjects(prefix: string): Promise<Map<string, StoredObject>> {
    const sizes = new Map<string, StoredObject>();
    const objects = (await this.entriesOf(prefix)).filter((entry) => !entry.name.includes('.partial-')).map((entry) => entry.name);
    const dir = this.pathOf(prefix);
    for (let start = 0; start < objects.length; start += parallelStats) {
      const batch = objects.slice(start, start + parallelStats);
      const stats = await Promise.all(batch.map((name) => fs.stat(path.join(dir, name)).catch(() => undefined)));
      for (const [at, stat] of stats.entries()) if (stat?.isFile()) sizes.set(`${prefix}/${batch[at]}`, { size: stat.size });
    }
    return sizes;
  }

  /** The names of the folders directly under the folder-like prefix. */
  async listFolders(prefix: string): Promise<string[]> {
    return (await this.entriesOf(prefix)).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  }

  /** The directory's entries; none when it does not exist (nothing was stored under the prefix). */
  private async entriesOf(prefix: string): Promise<Dirent[]> {
    try {
      return await fs.readdir(this.pathOf(prefix), { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  async deleteKeys(keys: string[]): Promise<void> {
    await Promise.all(keys.map((key) => fs.rm(this.pathOf(key), { force: true })));
  }

  async deletePrefix(prefix: string): Promise<void> {
    const dir = this.pathOf(prefix);
    for (const made of this.made) if (made === dir || made.startsWith(`${dir}${path.sep}`)) this.made.delete(made);
    await fs.rm(dir, { recursive: true, force: true });
  }

  async locate(key: string, access: 'get' | 'put', worker: { colocated: boolean }, range?: ByteRange): Promise<Location | undefined> {
    if (!worker.colocated) return undefined;
    const file = this.pathOf(key);
    // The worker writes beside the target and renames; the directory must exist for that.
    if (access === 'put') await this.mkdirOnce(path.dirname(file));
    return { via: 'file', path: path.resolve(file), ...(range ? { range } : {}) };
  }

  /** Pieces are positioned writes into one file (created sparse by the first), so there is nothing to start or finish. */
  async openParts(key: string): Promise<undefined> {
    await this.mkdirOnce(path.dirname(this.pathOf(key)));
    return undefined;
  }

  async locatePart(key: string, _upload: string | undefined, part: { range: ByteRange }, worker: { colocated: boolean }): Promise<Location | undefined> {
    return worker.colocated ? { via: 'file', path: path.resolve(this.pathOf(key)), range: part.range } : undefined;
  }

  async putRange(key: string, range: ByteRange, body: Readable): Promise<void> {
    // Opened without truncating (pieces arrive in any order), created sparse by the first; the stream closes it.
    const file = await fs.open(this.pathOf(key), constants.O_RDWR | constants.O_CREAT, 0o644);
    await pipeline(body, file.createWriteStream({ start: range.start }));
  }

  async closeParts(): Promise<void> {}

  async abortParts(): Promise<void> {}

  /** A signed PUT of exactly `size` bytes, creating the object (an upload URL writes once). */
  async uploadUrl(key: string, size: number, expiresAt: number): Promise<string> {
    await this.mkdirOnce(path.dirname(this.pathOf(key)));
    return `${this.serviceUrl}${this.signer.path({ method: 'PUT', key: checkKey(key), size, expiresAt })}`;
  }

  /** With a storage service, a signed GET there; without one, the master streams the file itself. */
  async downloadUrl(key: string, as: { fileName: string; contentType: string }): Promise<string | undefined> {
    if (this.servedByMaster) return undefined;
    return `${this.serviceUrl}${this.signer.path({ method: 'GET', key: checkKey(key), name: as.fileName, type: as.contentType, expiresAt: this.now() + presignedSeconds * 1000 })}`;
  }
}
