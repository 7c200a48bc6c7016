import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { MasterConfig } from '../shared/config.js';
import { HttpError } from '../shared/http-error.js';

export type AdmissionLimits = Pick<MasterConfig, 'maxQueuedImages' | 'maxRequestBytes' | 'maxJobPixels'>;

/** Free bytes on the volume holding dir (what an unprivileged process may still write). */
export async function freeDiskBytes(dir: string): Promise<number> {
  const stats = await statfs(dir);
  return stats.bavail * stats.bsize;
}

/** Seconds a client waits before retrying a full queue: about the time a few images take. */
const queueRetryAfterSeconds = 5;
/** Seconds before retrying on a full disk: space comes back when jobs expire or are purged, not soon. */
const diskRetryAfterSeconds = 60;
/**
 * How old a reading of the disk's free bytes may be when a write is admitted against it: one statfs a
 * second rather than one per upload (it cost about as much as writing a 200 kB file).
 */
const diskReadingMs = 1_000;

/** How long a process waits for the other's lock on the disk ledger: far longer than its transactions take. */
const ledgerBusyMs = 2_000;

/** This process's start (startTicksOf), recorded with its holds. */
const ownStartTicks = startTicksOf(process.pid) ?? null;

/** Disk bytes held for one write: `kept` once they are on disk, `release` when nothing stays; either again is harmless. */
export interface DiskHold {
  kept(): void;
  release(): void;
}

/** The file beside a data directory's SQLite stores where every process writing uploads there records what it promised. */
export const diskLedgerFile = (dataDir: string): string => path.join(dataDir, 'upload-disk.sqlite');

/**
 * When a process started, in clock ticks since boot (field 22 of /proc/<pid>/stat): with its pid, what
 * tells it from a later process given the same pid (after a reboot, a service often gets its old one).
 * Undefined where there is no /proc (macOS, Windows: the pid alone is used) or no such process.
 */
function startTicksOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote a hold still runs: its pid does, and (where /proc tells) it started when the hold's writer did. */
function writerAlive(pid: number, started: number | null): boolean {
  // Not this process's own rows (those are never asked about): an earlier process that had its pid.
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const ticks = started === null ? undefined : startTicksOf(pid);
  return ticks === undefined || ticks === started;
}

/**
 * The disk space promised to uploads, whether a multipart POST /v1/jobs or a local upload session's PUT:
 * one budget, so neither can spend what the other was promised, and one refusal (503, Retry-After). The
 * master and its storage service are separate processes writing to one disk, so the promises live in a
 * SQLite ledger both open (diskLedgerFile): each check and the hold it grants are one IMMEDIATE
 * transaction, so concurrent writes, in one process or two, cannot all pass the same check. Bytes kept
 * count as used for one reading's age after they were kept, until every process's next reading sees them
 * on the disk; holds of a process that died are dropped. Without a file (tests) the ledger is in memory.
 */
export class UploadDisk {
  private reading: { at: number; free: number } | undefined;
  private readonly ledger: DatabaseSync;
  /** This budget's own rows in the ledger (a process may open several, as tests do): closing it gives them back. */
  private readonly holder = randomUUID();
  private readonly statements: ReturnType<UploadDisk['prepareStatements']>;

  constructor(
    private readonly minFreeDiskBytes: number,
    /** Free bytes where uploads and results are written (freeDiskBytes). */
    private readonly diskFree: () => Promise<number>,
    private readonly now: () => number = Date.now,
    ledgerFile = ':memory:',
  ) {
    // Opened by two processes at once: the busy timeout is set before the first statement, so the other
    // process's lock (a transaction takes microseconds) is waited for, never an error. WAL and
    // synchronous=NORMAL as database.ts opens the master's own files.
    this.ledger = new DatabaseSync(ledgerFile, { timeout: ledgerBusyMs });
    this.ledger.exec(
      'PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE IF NOT EXISTS holds (id INTEGER PRIMARY KEY, holder TEXT NOT NULL, pid INTEGER NOT NULL, started INTEGER, bytes INTEGER NOT NULL, kept_at INTEGER)',
    );
    // A ledger from before `started` (its rows are judged by their pid alone).
    const columns = this.ledger.prepare('PRAGMA table_info(holds)').all() as Array<{ name: string }>;
    if (!columns.some(({ name }) => name === 'started')) this.ledger.exec('ALTER TABLE holds ADD COLUMN started INTEGER');
    this.statements = this.prepareStatements();
  }

  /** Compiled once: a hold runs several of them, and compiling costs about as much as running. */
  private prepareStatements() {
    const statement = (sql: string) => this.ledger.prepare(sql);
    return {
      seen: statement('DELETE FROM holds WHERE kept_at <= ?'),
      promised: statement('SELECT COALESCE(SUM(bytes), 0) AS promised FROM holds WHERE kept_at IS NULL OR kept_at > ?'),
      insert: statement('INSERT INTO holds (holder, pid, started, bytes) VALUES (?, ?, ?, ?)'),
      kept: statement('UPDATE holds SET kept_at = ? WHERE id = ?'),
      release: statement('DELETE FROM holds WHERE id = ?'),
      otherWriters: statement('SELECT DISTINCT pid, started FROM holds WHERE NOT (pid = ? AND started IS ?)'),
      dropWriter: statement('DELETE FROM holds WHERE pid = ? AND started IS ?'),
      dropHolder: statement('DELETE FROM holds WHERE holder = ?'),
    };
  }

  /** Holds `bytes` for `what` (named in the refusal), or refuses with 503 when they would bring the disk below the reserve. */
  async hold(bytes: number, what: string): Promise<DiskHold> {
    const fresh = !this.reading || this.now() - this.reading.at >= diskReadingMs;
    if (fresh) this.reading = { at: this.now(), free: await this.diskFree() };
    const { free: diskFree } = this.reading!;
    // Kept a reading's age ago or earlier: every reading still in use was taken after, and sees those bytes on the disk.
    const seenBefore = this.now() - diskReadingMs;
    // Nothing to promise (a job whose inputs are in storage already): the reserve's check alone, no write.
    if (bytes === 0) {
      this.checkRoom(diskFree, seenBefore, 0, what);
      return { kept: () => undefined, release: () => undefined };
    }
    const id = this.inTransaction(() => {
      // Rows that no longer count are deleted once a reading, not once a hold: every write to the ledger costs.
      if (fresh) {
        this.dropHoldsOfDeadProcesses();
        this.statements.seen.run(seenBefore);
      }
      this.checkRoom(diskFree, seenBefore, bytes, what);
      return Number(this.statements.insert.run(this.holder, process.pid, ownStartTicks, bytes).lastInsertRowid);
    });
    let done = false;
    const end = (kept: boolean) => {
      // After close (a request ending while its process stops) the rows went with it.
      if (done || !this.ledger.isOpen) return;
      done = true;
      if (kept) this.statements.kept.run(this.now(), id);
      else this.statements.release.run(id);
    };
    return { kept: () => end(true), release: () => end(false) };
  }

  /** Refuses `bytes` more when, with every promise that still counts, they would bring the disk below the reserve. */
  private checkRoom(diskFree: number, seenBefore: number, bytes: number, what: string): void {
    const { promised } = this.statements.promised.get(seenBefore) as { promised: number };
    const free = diskFree - promised;
    if (free - bytes < this.minFreeDiskBytes) {
      throw new HttpError(503, 'insufficient_storage', `the master's disk has ${free} bytes free for uploads and keeps ${this.minFreeDiskBytes} in reserve; ${what} needs ${bytes}; retry later`, diskRetryAfterSeconds);
    }
  }

  /** Gives back this budget's holds (the writes still running when its process stops) and closes the ledger; again is harmless. */
  close(): void {
    if (!this.ledger.isOpen) return;
    this.statements.dropHolder.run(this.holder);
    this.ledger.close();
  }

  private dropHoldsOfDeadProcesses(): void {
    const writers = this.statements.otherWriters.all(process.pid, ownStartTicks) as Array<{ pid: number; started: number | null }>;
    for (const { pid, started } of writers) if (!writerAlive(pid, started)) this.statements.dropWriter.run(pid, started);
  }

  private inTransaction<T>(work: () => T): T {
    this.ledger.exec('BEGIN IMMEDIATE');
    try {
      const result = work();
      this.ledger.exec('COMMIT');
      return result;
    } catch (error) {
      this.ledger.exec('ROLLBACK');
      throw error;
    }
  }
}

/**
 * Capacity a request holds while it is received and stored: the disk bytes it may write and, once its
 * images are known, their places in the queue. `commit` once the job is stored (its images are then
 * counted by the store, its files by the disk), `release` when it failed; either again is harmless.
 */
export interface Reservation {
  readonly bytes: number;
  /** Claims queue places and checks the pixel budget for the job's images; throws 413/429. */
  reserveImages(images: ReadonlyArray<{ width: number; height: number }>): void;
  commit(): void;
  release(): void;
}

/**
 * Admission control for POST /v1/jobs. Every check and the reservation it grants happen in one
 * synchronous step (no await between them), so concurrent requests cannot all pass the same check:
 * the sum of what is reserved and what the store already holds never exceeds a limit.
 */
export class Admission {
  private reservedImages = 0;

  constructor(
    private readonly limits: AdmissionLimits,
    /** Images accepted and not finished (the store's count). */
    private readonly pendingImages: () => number,
    private readonly disk: UploadDisk,
  ) {}

  /**
   * Admits a request before its body is read: refuses it when its declared size is over the limit, the
   * queue is full, or writing it could bring the disk below the reserve. A body without a declared
   * length reserves the largest request allowed.
   */
  async admit(req: IncomingMessage): Promise<Reservation> {
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    const { maxRequestBytes } = this.limits;
    if (declared !== undefined && declared > maxRequestBytes) {
      throw new HttpError(413, 'request_too_large', `the request is ${declared} bytes; at most ${maxRequestBytes} bytes are accepted (DIPS_MAX_REQUEST_BYTES)`);
    }
    return this.reserve(declared ?? maxRequestBytes, 'this request');
  }

  /**
   * Admits a job whose inputs are in storage already (an upload session's): the queue's checks, and no
   * bytes to hold beyond the disk's reserve.
   */
  admitStored(): Promise<Reservation> {
    return this.reserve(0, 'this job');
  }

  private async reserve(bytes: number, what: string): Promise<Reservation> {
    this.checkQueue(0);
    const disk = await this.disk.hold(bytes, what);
    try {
      // After the await: other requests may have reserved meanwhile, and this step counts them.
      this.checkQueue(0);
    } catch (error) {
      disk.release();
      throw error;
    }
    let images = 0;
    let ended = false;
    const end = (committed: boolean) => {
      if (ended) return;
      ended = true;
      this.reservedImages -= images;
      if (committed) disk.kept();
      else disk.release();
    };
    return {
      bytes,
      reserveImages: (list) => {
        checkJobPixels(list, this.limits.maxJobPixels);
        this.checkQueue(list.length);
        this.reservedImages += list.length;
        images += list.length;
      },
      commit: () => end(true),
      release: () => end(false),
    };
  }

  private checkQueue(adding: number): void {
    const held = this.pendingImages() + this.reservedImages;
    const max = this.limits.maxQueuedImages;
    if (adding === 0 ? held >= max : held + adding > max) {
      const what = adding === 0 ? `the queue holds ${max} images` : `the queue cannot take ${adding} more images (${held} of ${max} taken)`;
      throw new HttpError(429, 'saturated', `${what}; retry later`, queueRetryAfterSeconds);
    }
  }
}

/** The per-job pixel budget: the sum of the input images' pixels. */
function checkJobPixels(images: ReadonlyArray<{ width: number; height: number }>, maxJobPixels: number): void {
  const pixels = images.reduce((sum, image) => sum + image.width * image.height, 0);
  if (pixels > maxJobPixels) {
    throw new HttpError(413, 'job_too_many_pixels', `the job's images hold ${pixels} pixels together; at most ${maxJobPixels} per job (DIPS_MAX_JOB_PIXELS)`);
  }
}
