import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import { openDatabase } from './database.js';
import { imageStatuses, isTerminalStatus, type ImageStatus, type ImageView, type JobStatus, type JobView } from '../protocol/api.js';
import type { InputFormat } from '../image-core/decode.js';
import { outputFormatFor } from '../image-core/encode.js';
import { type OutputOptions } from '../protocol/output.js';
import type { WorkItem } from '../scaler/work.js';
import type { ErrorKind } from './batch/item-error.js';
import type { ObjectInfo } from './batch/objects.js';
import type { ItemView, JobSummary, JobsPage } from '../protocol/batch.js';

export type { ImageStatus, ImageView, JobStatus, JobView };
export type JobKind = 'upload' | 'batch';
export type Progress = JobView['progress'];

/** Jobs up to this many items list them all in GET /v1/jobs/{id}; larger ones page through /items (contract). */
export const maxListedImages = 1000;
/** Batch jobs whose parsed submission the store keeps at once. */
const maxCachedSpecs = 1000;
/**
 * How long the store may hold the writes that only record progress (a claim marking items running, a
 * worker taking an item, a batch item's outcome) before committing them together. Results arrive one at
 * a time and a commit each was the store's largest cost; 50 ms is a fifth of the event streams' 250 ms
 * interval, so a view or stream shows a result at most this much later than before.
 */
export const heldWritesMs = 50;
/** Held writes committed at once, whatever the window: bounds what they hold (and what a crash re-runs). */
const maxHeldWrites = 256;

export interface NewImage {
  name: string;
  width: number;
  height: number;
  channels: number;
  format: string;
  /** A progressive JPEG or interlaced PNG (OpenedInput.progressive): the planner gives it a decode task. */
  progressive?: boolean;
  /** Turned whole by its EXIF orientation (OpenedInput.turned): the planner gives it a decode task too. */
  turned?: boolean;
  /** Upright 8-bit sRGB or grey without a profile (OpenedInput.plain): the planner sizes decoding strips by it. */
  plain?: boolean;
}

export interface NewJob {
  id: string;
  pipeline: unknown[];
  format?: string;
  quality?: number;
  /** Encoder options as the job (or its preset) gave them. */
  options?: OutputOptions;
  images: NewImage[];
}

/** A job read from storage: its items are listed into it afterwards (addItems), page by page. */
export interface NewBatchJob {
  id: string;
  pipeline: unknown[];
  format?: string;
  quality?: number;
  /** The validated job body (inputs, output, maxFailures), JSON. */
  spec: unknown;
  /** Hash of the body: a second submission of the same body while this job is unfinished attaches to it. */
  specKey: string;
}

export interface NewItem {
  /** Input URI. */
  source: string;
  /** Path relative to the input prefix. */
  name: string;
  /** The version the listing saw (ETag and size in S3, the file's on disk): the item needs no HEAD when it runs. */
  version?: ObjectInfo;
}

/** What recording an outcome did to its job: its status after, and whether this outcome finished it. */
export interface FinishedImage {
  status: JobStatus;
  finished: boolean;
  ageMs: number;
}

/** The batch fields of a finished item. */
export interface ItemOutcome extends ImageOutcome {
  errorKind?: ErrorKind;
  /** Output URIs written (or found already there, when skipped). */
  outputs?: string[];
  skipped?: boolean;
  /** Outputs to remember with their content key, so a resubmission can skip them. */
  recorded?: OutputRecord[];
}

export interface OutputRecord {
  uri: string;
  contentKey: string;
  fingerprint: string;
}

/** What a batch job was submitted with: fixed for its life, so the store parses it once and keeps it. */
export interface BatchJobSpec {
  id: string;
  pipeline: unknown[];
  format?: string;
  quality?: number;
  spec: unknown;
  createdAt: number;
}

/** A batch job as its runner needs it. */
export interface BatchJobRow extends BatchJobSpec {
  status: JobStatus;
  listed: boolean;
  listCursor?: string;
  error?: string;
  manifestWritten: boolean;
}

/** What the batch runner needs to process one item. */
export interface ItemWork {
  jobId: string;
  index: number;
  name: string;
  source: string;
  /** The input's version as listed; absent for inputs named one by one (the runner reads it). */
  version?: ObjectInfo;
}

/** What the runner needs to process one image. */
export interface ImageWork {
  jobId: string;
  index: number;
  name: string;
  width: number;
  height: number;
  channels: number;
  inputFormat: string;
  inputProgressive: boolean;
  inputTurned: boolean;
  inputPlain: boolean;
  pipeline: unknown[];
  format?: string;
  quality?: number;
  options?: OutputOptions;
}

export interface ImageOutcome {
  status: 'succeeded' | 'failed' | 'canceled';
  error?: string;
  width?: number;
  height?: number;
  outputFormat?: string;
  qr?: string[];
  /** The analysis steps' results besides qr (phash, thumbhash, metadata...). */
  annotations?: Record<string, unknown>;
}

export interface ImageRow {
  job_id: string;
  idx: number;
  name: string;
  status: ImageStatus;
  error: string | null;
  // Known at upload; unknown (null) for batch items, which the master never decodes.
  in_width: number | null;
  in_height: number | null;
  in_channels: number | null;
  in_format: string | null;
  in_progressive: number | null;
  in_turned: number | null;
  in_plain: number | null;
  width: number | null;
  height: number | null;
  out_format: string | null;
  qr: string | null;
  started_at: number | null;
  source: string | null;
  outputs: string | null;
  annotations: string | null;
  skipped: number;
  error_kind: ErrorKind | null;
  source_version: string | null;
  source_size: number | null;
}

interface JobRow {
  id: string;
  status: JobStatus;
  pipeline: string;
  format: string | null;
  quality: number | null;
  options: string | null;
  created_at: number;
  finished_at: number | null;
  kind: JobKind;
  spec: string | null;
  spec_key: string | null;
  listed: number;
  list_cursor: string | null;
  error: string | null;
  manifest_written: number;
}

/** A job a claim can take from: its creation time (the claim order) and its queued indexes. */
interface ClaimableJob {
  createdAt: number;
  queued: QueuedIndexes;
}

/**
 * Item indexes waiting to be claimed, in order, as runs [from, to): a job's items are queued in long
 * runs (created or listed together), so a 100,000-item job takes a few numbers, not 100,000.
 */
class QueuedIndexes {
  private readonly runs: Array<[from: number, to: number]> = [];
  size = 0;

  /** Queues [from, to) (none of them queued already), merged with the runs it touches. */
  add(from: number, to: number): void {
    this.size += to - from;
    let at = this.runs.length;
    while (at > 0 && this.runs[at - 1]![0] > from) at -= 1;
    const before = this.runs[at - 1];
    if (before && before[1] === from) {
      before[1] = to;
      const after = this.runs[at];
      if (after && after[0] === to) {
        before[1] = after[1];
        this.runs.splice(at, 1);
      }
      return;
    }
    const after = this.runs[at];
    if (after && after[0] === to) after[0] = from;
    else this.runs.splice(at, 0, [from, to]);
  }

  /** Takes up to `count` of the lowest indexes. */
  take(count: number): number[] {
    const taken: number[] = [];
    while (taken.length < count && this.runs.length > 0) {
      const run = this.runs[0]!;
      const end = Math.min(run[1], run[0] + count - taken.length);
      for (let index = run[0]; index < end; index++) taken.push(index);
      run[0] = end;
      if (run[0] === run[1]) this.runs.shift();
    }
    this.size -= taken.length;
    return taken;
  }
}

/** An outcome waiting for the next commit, and who hears what recording it did to its job. */
interface HeldOutcome {
  item: { jobId: string; index: number; outcome: ItemOutcome };
  recorded: (result: FinishedImage) => void;
}

/** Writes waiting for the next commit (see heldWritesMs), in the order they are written. */
interface HeldWrites {
  /** Items claimed, per job: still queued in the table, running for every claim since. */
  claims: Map<string, Set<number>>;
  started: Array<{ jobId: string; index: number; at: number }>;
  outcomes: HeldOutcome[];
}

const noHeldWrites = (): HeldWrites => ({ claims: new Map(), started: [], outcomes: [] });

type Parameters = SQLInputValue[];
interface Statement {
  run(...params: Parameters): { changes: number };
  get(...params: Parameters): unknown;
  all(...params: Parameters): unknown[];
}

/** SQLite's extended result code for a violated foreign key (the job was deleted meanwhile). */
const SQLITE_CONSTRAINT_FOREIGNKEY = 787;

export const isTerminal = isTerminalStatus;
const itemStatuses = new Set<string>(imageStatuses);

const schema = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  pipeline TEXT NOT NULL,
  format TEXT,
  quality INTEGER,
  created_at INTEGER NOT NULL,
  finished_at INTEGER,
  kind TEXT NOT NULL DEFAULT 'upload',
  -- batch jobs: the validated body, its hash, whether listing its inputs is complete and where it stopped
  spec TEXT,
  spec_key TEXT,
  listed INTEGER NOT NULL DEFAULT 1,
  list_cursor TEXT,
  -- why the job stopped early (maxFailures) or could not list its inputs
  error TEXT,
  manifest_written INTEGER NOT NULL DEFAULT 0,
  -- encoder options (JSON) as the job gave them
  options TEXT
);
CREATE INDEX IF NOT EXISTS jobs_newest ON jobs(created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_by_spec ON jobs(spec_key) WHERE spec_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS images (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  name TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT,
  in_width INTEGER,
  in_height INTEGER,
  in_channels INTEGER,
  in_format TEXT,
  in_progressive INTEGER,
  in_turned INTEGER,
  in_plain INTEGER,
  width INTEGER,
  height INTEGER,
  out_format TEXT,
  qr TEXT,
  -- set when a worker first takes the image (or one of its tiles): until then it shows as queued
  started_at INTEGER,
  -- batch items: input URI (NULL for uploads), output URIs (JSON), annotations (JSON), error kind
  source TEXT,
  outputs TEXT,
  annotations TEXT,
  skipped INTEGER NOT NULL DEFAULT 0,
  error_kind TEXT,
  -- batch items: the input's version (ETag, or size:mtime:inode) and size as its listing saw them
  source_version TEXT,
  source_size INTEGER,
  PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS images_by_status_source ON images(status, source);
CREATE INDEX IF NOT EXISTS images_by_job_status ON images(job_id, status, idx);
-- Items per job and status, kept by triggers: progress and job status of a 100,000-item job are read
-- from here in constant time instead of counting its rows on every change.
CREATE TABLE IF NOT EXISTS job_counts (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  status TEXT NOT NULL,
  n INTEGER NOT NULL,
  skipped INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, status)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS images_counted AFTER INSERT ON images BEGIN
  INSERT INTO job_counts (job_id, status, n, skipped) VALUES (NEW.job_id, NEW.status, 1, NEW.skipped)
    ON CONFLICT (job_id, status) DO UPDATE SET n = n + 1, skipped = skipped + NEW.skipped;
END;
CREATE TRIGGER IF NOT EXISTS images_recounted AFTER UPDATE OF status, skipped ON images
  WHEN OLD.status <> NEW.status OR OLD.skipped <> NEW.skipped BEGIN
  UPDATE job_counts SET n = n - 1, skipped = skipped - OLD.skipped WHERE job_id = OLD.job_id AND status = OLD.status;
  INSERT INTO job_counts (job_id, status, n, skipped) VALUES (NEW.job_id, NEW.status, 1, NEW.skipped)
    ON CONFLICT (job_id, status) DO UPDATE SET n = n + 1, skipped = skipped + NEW.skipped;
END;
-- Outputs written by batch jobs and the content key they were made with (see batch/content-key.ts),
-- kept beyond their jobs so that a resubmission skips what is already there.
CREATE TABLE IF NOT EXISTS outputs (
  uri TEXT PRIMARY KEY,
  content_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL
) WITHOUT ROWID;
-- the lease journal of earlier versions: leases live in the dispatcher, restarts resume from images and checkpoints
DROP TABLE IF EXISTS tasks;
DROP INDEX IF EXISTS images_by_status;
CREATE TABLE IF NOT EXISTS checkpoints (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY (job_id, idx)
);
`;

/**
 * Jobs, images and tiling checkpoints in SQLite (WAL) in the data dir: a job answered with 202
 * is committed here first, so a restarted master finds every unfinished image and runs it again.
 * Emits 'job' with the job id whenever a job's visible state changes, and with the indexes of the
 * images whose rows changed when nothing else in the job's images did (a view is then patched).
 */
export class JobStore extends EventEmitter<{ job: [jobId: string, images?: readonly number[]] }> {
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, Statement>();
  private inTransaction = false;
  private inSnapshot = false;
  /**
   * Jobs with queued items, by kind, with their creation time and the indexes queued (not yet claimed):
   * a claim takes from these without a query, then reads the claimed rows by their keys. Every write that
   * queues items adds them; a job whose queue runs out is dropped. Rebuilt from the table on opening.
   */
  private readonly claimable: Record<JobKind, Map<string, ClaimableJob>> = { upload: new Map(), batch: new Map() };
  /** Batch items claimed and not yet finished, per job: the claim order (fewest first) without counting them. */
  private readonly runningItems = new Map<string, number>();
  /** Batch jobs' submissions, parsed once: the runner reads them for every item. */
  private readonly batchSpecs = new Map<string, BatchJobSpec>();
  /**
   * Writes held for the next commit: the next transaction writes them first (so a cancel, stop or retry
   * sees them), else the window's timer does. A master killed meanwhile loses them, which is safe: an
   * item whose claim or outcome was not committed is queued or running in the table, and runs again.
   */
  private held = noHeldWrites();
  private heldCount = 0;
  private heldTimer: NodeJS.Timeout | undefined;

  constructor(dataDir: string) {
    super();
    this.setMaxListeners(0);
    this.db = openDatabase(path.join(dataDir, 'dips.sqlite'));
    this.db.exec('PRAGMA foreign_keys = ON;');
    this.db.exec(schema);
    this.addMissingColumns();
    this.loadClaimable();
  }

  /** The in-memory claim state as the tables have it (on opening, and after a restart re-queued items). */
  private loadClaimable(): void {
    for (const jobs of Object.values(this.claimable)) jobs.clear();
    this.runningItems.clear();
    const rows = this
      .prepare(
        `SELECT j.id, j.kind, j.created_at, c.status, c.n FROM jobs j JOIN job_counts c ON c.job_id = j.id
         WHERE c.status IN ('queued', 'running') AND c.n > 0`,
      )
      .all() as Array<{ id: string; kind: JobKind; created_at: number; status: ImageStatus; n: number }>;
    for (const row of rows) {
      if (row.status === 'queued') this.requeueFromTable(row.id, row.kind, row.created_at);
      else if (row.kind === 'batch') this.runningItems.set(row.id, row.n);
    }
  }

  /** A job's claim queue as the table has it: every queued row (held claims must be written first). */
  private requeueFromTable(jobId: string, kind: JobKind, createdAt: number): void {
    const queued = new QueuedIndexes();
    const rows = this.prepare(`SELECT idx FROM images WHERE job_id = ? AND status = 'queued' ORDER BY idx`).all(jobId) as Array<{ idx: number }>;
    for (const { idx } of rows) queued.add(idx, idx + 1);
    if (queued.size > 0) this.claimable[kind].set(jobId, { createdAt, queued });
    else this.claimable[kind].delete(jobId);
  }

  /** Indexes [from, to) of a job just queued (new images or items), at the end of its claim queue. */
  private enqueue(jobId: string, kind: JobKind, createdAt: number, from: number, to: number): void {
    if (to <= from) return;
    let job = this.claimable[kind].get(jobId);
    if (!job) this.claimable[kind].set(jobId, (job = { createdAt, queued: new QueuedIndexes() }));
    job.queued.add(from, to);
  }

  /** Columns added after their table first shipped: a data dir of an earlier version gets them when opened. */
  private addMissingColumns(): void {
    const added = [
      { table: 'jobs', column: 'options', type: 'TEXT' },
      { table: 'images', column: 'source_version', type: 'TEXT' },
      { table: 'images', column: 'source_size', type: 'INTEGER' },
      { table: 'images', column: 'in_progressive', type: 'INTEGER' },
      { table: 'images', column: 'in_plain', type: 'INTEGER' },
      { table: 'images', column: 'in_turned', type: 'INTEGER' },
    ] as const;
    for (const { table, column, type } of added) {
      const present = (this.db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).some((info) => info.name === column);
      if (!present) this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    }
  }

  close(): void {
    this.commitHeld();
    this.db.close();
  }

  /** Commits the held writes now (on stopping, and before a decision that must see every outcome). */
  commitHeld(): void {
    if (this.heldCount > 0) this.transaction(() => undefined);
  }

  /** Counts a held write: the window's timer starts with the first, and a full window commits at once. */
  private hold(writes: number): void {
    this.heldCount += writes;
    if (this.heldCount >= maxHeldWrites && !this.inTransaction) return this.commitHeld();
    this.heldTimer ??= setTimeout(() => this.commitHeld(), heldWritesMs).unref();
  }

  /**
   * Compiles each statement once: preparing one costs more than running it (some run per image or
   * tile). Rows come back as `unknown` for the caller to name, since SQLite's own row type says nothing
   * about this schema.
   */
  private prepare(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      const compiled = this.db.prepare(sql);
      statement = {
        run: (...params) => ({ changes: Number(compiled.run(...params).changes) }),
        get: (...params) => compiled.get(...params),
        all: (...params) => compiled.all(...params),
      };
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * Runs `work`'s reads in one read transaction: they see one state of the tables, and take SQLite's
   * read lock once instead of once per statement (see imagesAt). `work` only reads; inside a
   * transaction it joins it.
   */
  private snapshot<T>(work: () => T): T {
    if (this.inTransaction || this.inSnapshot) return work();
    this.prepare('BEGIN').run();
    this.inSnapshot = true;
    try {
      return work();
    } finally {
      this.inSnapshot = false;
      this.prepare('COMMIT').run();
    }
  }

  /**
   * Runs `work` in one transaction, with the held writes first: all of them land together, or none
   * do. Called while one is open, `work` joins it.
   */
  private transaction<T>(work: () => T): T {
    if (this.inTransaction) return work();
    const held = this.held;
    this.held = noHeldWrites();
    const heldCount = this.heldCount;
    this.heldCount = 0;
    clearTimeout(this.heldTimer);
    this.heldTimer = undefined;
    this.prepare('BEGIN IMMEDIATE').run();
    this.inTransaction = true;
    let written;
    let result: T;
    try {
      written = this.writeHeld(held);
      result = work();
      this.prepare('COMMIT').run();
    } catch (error) {
      this.prepare('ROLLBACK').run();
      this.restoreHeld(held, heldCount);
      throw error;
    } finally {
      this.inTransaction = false;
    }
    this.heldWritten(held, written);
    return result;
  }

  /**
   * Writes held claims, started marks and outcomes, in that order (an item's outcome comes after its
   * claim), one row write per item where the window holds several of its changes: a claim and its
   * started mark are one UPDATE, and an item whose outcome is held too is written by the outcome alone
   * (queued to finished, with its start time).
   */
  private writeHeld(held: HeldWrites) {
    const markRunning = this.prepare("UPDATE images SET status = 'running' WHERE job_id = ? AND idx = ? AND status = 'queued'");
    const markRunningStarted = this.prepare("UPDATE images SET status = 'running', started_at = ? WHERE job_id = ? AND idx = ? AND status = 'queued'");
    // Claiming is what starts a job; nothing else about its status changes here (it was queued or running).
    const startJob = this.prepare(`UPDATE jobs SET status = 'running', finished_at = NULL WHERE id = ? AND status = 'queued'`);
    const markStarted = this.prepare('UPDATE images SET started_at = ? WHERE job_id = ? AND idx = ? AND started_at IS NULL');
    const finishing = new Map<string, Set<number>>();
    for (const { item } of held.outcomes) addTo(finishing, item.jobId, item.index);
    // The first start of an item counts (as `started_at IS NULL` has it).
    const started = new Map<string, Map<number, number>>();
    for (const { jobId, index, at } of held.started) {
      let marks = started.get(jobId);
      if (!marks) started.set(jobId, (marks = new Map()));
      if (!marks.has(index)) marks.set(index, at);
    }
    const touched = new Map<string, number[]>();
    for (const [jobId, indexes] of held.claims) {
      startJob.run(jobId);
      const finished = finishing.get(jobId);
      const marks = started.get(jobId);
      for (const index of indexes) {
        if (finished?.has(index)) continue;
        const at = marks?.get(index);
        marks?.delete(index);
        const changed = at === undefined ? markRunning.run(jobId, index) : markRunningStarted.run(at, jobId, index);
        if (changed.changes > 0) appendTo(touched, jobId, index);
      }
    }
    for (const [jobId, marks] of started) {
      const finished = finishing.get(jobId);
      for (const [index, at] of marks) {
        if (finished?.has(index)) continue;
        if (markStarted.run(at, jobId, index).changes > 0) appendTo(touched, jobId, index);
        marks.delete(index);
      }
    }
    // What is left in `started` are the marks of items finishing in this commit.
    const outcomes = held.outcomes.length > 0 ? this.writeOutcomes(held.outcomes.map(({ item }) => item), started) : undefined;
    return { touched, outcomes };
  }

  /** After the commit: the held outcomes' effects in memory, their listeners, one event per job touched. */
  private heldWritten(held: HeldWrites, written: ReturnType<JobStore['writeHeld']>): void {
    const { touched, outcomes } = written;
    if (outcomes) {
      this.outcomesWritten(outcomes.finishedPerJob);
      for (const [position, { item, recorded }] of held.outcomes.entries()) {
        appendTo(touched, item.jobId, item.index);
        recorded(outcomes.results[position]!);
      }
    }
    for (const [jobId, images] of touched) this.emit('job', jobId, [...new Set(images)].sort((a, b) => a - b));
  }

  /** A transaction that failed wrote nothing: what it held waits for the next one. */
  private restoreHeld(held: HeldWrites, count: number): void {
    for (const [jobId, indexes] of this.held.claims) for (const index of indexes) addTo(held.claims, jobId, index);
    held.started.push(...this.held.started);
    held.outcomes.push(...this.held.outcomes);
    this.held = held;
    this.heldCount += count;
    this.hold(0);
  }

  createJob(job: NewJob): void {
    const insertJob = this.prepare(
      'INSERT INTO jobs (id, status, pipeline, format, quality, options, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const insertImage = this.prepare(
      `INSERT INTO images (job_id, idx, name, status, in_width, in_height, in_channels, in_format, in_progressive, in_turned, in_plain)
       VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)`,
    );
    const createdAt = Date.now();
    this.transaction(() => {
      insertJob.run(job.id, 'queued', JSON.stringify(job.pipeline), job.format ?? null, job.quality ?? null, job.options ? JSON.stringify(job.options) : null, createdAt);
      job.images.forEach((image, index) =>
        insertImage.run(job.id, index, image.name, image.width, image.height, image.channels, image.format, image.progressive ? 1 : 0, image.turned ? 1 : 0, image.plain ? 1 : 0),
      );
    });
    this.enqueue(job.id, 'upload', createdAt, 0, job.images.length);
    this.emit('job', job.id);
  }

  /** Creates a batch job with no items yet; listing adds them (addItems) and then finishListing. */
  createBatchJob(job: NewBatchJob): void {
    this
      .prepare(
        `INSERT INTO jobs (id, status, pipeline, format, quality, created_at, kind, spec, spec_key, listed)
         VALUES (?, 'queued', ?, ?, ?, ?, 'batch', ?, ?, 0)`,
      )
      .run(job.id, JSON.stringify(job.pipeline), job.format ?? null, job.quality ?? null, Date.now(), JSON.stringify(job.spec), job.specKey);
    this.emit('job', job.id);
  }

  /** The batch job made from upload session `sessionId` (its inputs are `{"upload": sessionId}`), if any. */
  batchJobReadingUpload(sessionId: string): string | undefined {
    const row = this.prepare(`SELECT id FROM jobs WHERE kind = 'batch' AND json_extract(spec, '$.inputs.upload') = ? LIMIT 1`).get(sessionId) as { id: string } | undefined;
    return row?.id;
  }

  /** An unfinished batch job submitted with the same body, if any. */
  unfinishedJobWithSpec(specKey: string): string | undefined {
    const row = this
      .prepare(`SELECT id FROM jobs WHERE spec_key = ? AND status IN ('queued', 'running') ORDER BY created_at DESC LIMIT 1`)
      .get(specKey) as { id: string } | undefined;
    return row?.id;
  }

  /** Appends listed items and the listing's new cursor in one transaction (a restart resumes after them). */
  addItems(jobId: string, items: readonly NewItem[], cursor: string): void {
    const insert = this.prepare(
      `INSERT INTO images (job_id, idx, name, status, source, source_version, source_size) VALUES (?, ?, ?, 'queued', ?, ?, ?)`,
    );
    const first = this.transaction(() => {
      const { next } = this.prepare('SELECT COALESCE(MAX(idx) + 1, 0) AS next FROM images WHERE job_id = ?').get(jobId) as { next: number };
      items.forEach((item, offset) =>
        insert.run(jobId, next + offset, item.name, item.source, item.version?.fingerprint ?? null, item.version?.size ?? null),
      );
      this.prepare('UPDATE jobs SET list_cursor = ? WHERE id = ?').run(cursor, jobId);
      this.refreshJobStatus(jobId);
      return next;
    });
    if (items.length > 0) this.enqueue(jobId, 'batch', this.batchJobSpec(jobId)!.createdAt, first, first + items.length);
    this.emit('job', jobId);
  }

  /** Every input is listed (or listing failed with `error`): the job may now finish. */
  finishListing(jobId: string, error?: string): JobStatus | undefined {
    const status = this.transaction(() => {
      if (!this.prepare('UPDATE jobs SET listed = 1, error = COALESCE(?, error) WHERE id = ?').run(error ?? null, jobId).changes) return undefined;
      return this.refreshJobStatus(jobId);
    });
    this.emit('job', jobId);
    return status;
  }

  /** A batch job's submission (pipeline, body, output format): read and parsed once per job, then kept until the job is deleted. */
  batchJobSpec(id: string): BatchJobSpec | undefined {
    const known = this.batchSpecs.get(id);
    if (known) return known;
    const row = this.prepare(`SELECT * FROM jobs WHERE id = ? AND kind = 'batch'`).get(id) as JobRow | undefined;
    return row && this.specOf(row);
  }

  private specOf(row: JobRow): BatchJobSpec {
    let spec = this.batchSpecs.get(row.id);
    if (!spec) {
      spec = {
        id: row.id,
        pipeline: JSON.parse(row.pipeline) as unknown[],
        ...(row.format === null ? {} : { format: row.format }),
        ...(row.quality === null ? {} : { quality: row.quality }),
        spec: JSON.parse(row.spec ?? 'null') as unknown,
        createdAt: row.created_at,
      };
      // Bounded by the jobs kept (finished ones are deleted after the retention time); a master holding
      // more unfinished batch jobs than this parses again instead of growing.
      if (this.batchSpecs.size >= maxCachedSpecs) this.batchSpecs.clear();
      this.batchSpecs.set(row.id, spec);
    }
    return spec;
  }

  /** A batch job with its current state (status, listing, error, manifest): one row, the submission parsed once. */
  batchJob(id: string): BatchJobRow | undefined {
    const row = this.prepare(`SELECT * FROM jobs WHERE id = ? AND kind = 'batch'`).get(id) as JobRow | undefined;
    if (!row) return undefined;
    return {
      ...this.specOf(row),
      status: row.status,
      listed: row.listed === 1,
      ...(row.list_cursor === null ? {} : { listCursor: row.list_cursor }),
      ...(row.error === null ? {} : { error: row.error }),
      manifestWritten: row.manifest_written === 1,
    };
  }

  /** Batch jobs whose inputs are not all listed yet (a restarted master resumes their listing). */
  jobsBeingListed(): string[] {
    return (this.prepare(`SELECT id FROM jobs WHERE kind = 'batch' AND listed = 0 AND status NOT IN ('canceled')`).all() as Array<{ id: string }>).map(
      (row) => row.id,
    );
  }

  /** Finished batch jobs whose manifest copy is not written yet. */
  jobsAwaitingManifest(): string[] {
    return (
      this
        .prepare(`SELECT id FROM jobs WHERE kind = 'batch' AND manifest_written = 0 AND status IN ('succeeded', 'partial', 'failed', 'canceled')`)
        .all() as Array<{ id: string }>
    ).map((row) => row.id);
  }

  markManifestWritten(jobId: string): void {
    this.prepare('UPDATE jobs SET manifest_written = 1 WHERE id = ?').run(jobId);
  }

  /** Whether a job of this id exists, whatever its state (one indexed lookup). */
  hasJob(id: string): boolean {
    return this.prepare('SELECT 1 FROM jobs WHERE id = ?').get(id) !== undefined;
  }

  /** A job's status and progress without its items: constant time whatever the job's size. */
  jobSummary(id: string): JobView | undefined {
    return this.snapshot(() => {
      const job = this.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
      return job && toSummary(job, this.progressOf(id));
    });
  }

  /**
   * The job with its images (up to maxListedImages). Given an earlier view and the images changed
   * since (as 'job' events named them), only those rows are read again; the rest are the earlier ones.
   */
  getJob(id: string, since?: { view: JobView; changed: ReadonlySet<number> }): JobView | undefined {
    return this.snapshot(() => {
      const job = this.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
      if (!job) return undefined;
      const summary = toSummary(job, this.progressOf(id));
      if (summary.progress.total > maxListedImages) return summary;
      const images = (since && this.patchedImages(id, summary.progress.total, since)) ?? this.imagesOf(id).map(toImageView);
      // Claimed images wait in the dispatcher's queue until a worker takes them: still queued to the user.
      const status = job.status === 'running' && job.listed === 1 && images.every((image) => image.status === 'queued') ? 'queued' : summary.status;
      return { ...summary, status, images };
    });
  }

  /** An earlier view's images with the changed rows read again; undefined when rows came or went. */
  private patchedImages(jobId: string, total: number, since: { view: JobView; changed: ReadonlySet<number> }): ImageView[] | undefined {
    const earlier = since.view.images;
    if (!earlier || earlier.length !== total) return undefined;
    const images = [...earlier];
    const rows = this.imagesAt(jobId, since.changed);
    for (const index of since.changed) {
      const row = rows.get(index);
      // Views list images by index, and indexes run from 0: a row elsewhere means the earlier view is no guide.
      if (!row || images[index]?.index !== index) return undefined;
      images[index] = toImageView(row);
    }
    return images;
  }

  /** GET /v1/jobs: every job, newest first, a page at a time. */
  listJobs(query: { status?: JobStatus; limit: number; cursor?: string }): JobsPage {
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    // One snapshot: the page and every job's counts as of the same moment.
    return this.snapshot(() => {
      const rows = this
        .prepare(
          `SELECT * FROM jobs WHERE (? IS NULL OR status = ?) AND (? IS NULL OR created_at < ? OR (created_at = ? AND id < ?))
           ORDER BY created_at DESC, id DESC LIMIT ?`,
        )
        .all(
          query.status ?? null,
          query.status ?? null,
          after?.createdAt ?? null,
          after?.createdAt ?? null,
          after?.createdAt ?? null,
          after?.id ?? null,
          query.limit + 1,
        ) as JobRow[];
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      return {
        jobs: page.map((row) => toSummary(row, this.progressOf(row.id))),
        ...(rows.length > query.limit && last ? { next: encodeCursor({ createdAt: last.created_at, id: last.id }) } : {}),
      };
    });
  }

  /** GET /v1/jobs/{id}/items: a page of items in index order, optionally of one status. */
  itemsPage(jobId: string, query: { status?: ImageStatus; limit: number; cursor?: string }): { items: ItemView[]; next?: string } {
    const after = query.cursor === undefined ? -1 : decodeItemCursor(query.cursor);
    const rows = this
      .prepare(`SELECT * FROM images WHERE job_id = ? AND idx > ? AND (? IS NULL OR status = ?) ORDER BY idx LIMIT ?`)
      .all(jobId, after, query.status ?? null, query.status ?? null, query.limit + 1) as ImageRow[];
    const page = rows.slice(0, query.limit);
    return {
      items: page.map(toItemView),
      ...(rows.length > query.limit ? { next: String(page.at(-1)!.idx) } : {}),
    };
  }

  /** Counts per status from job_counts (kept by triggers). */
  private progressOf(jobId: string): Progress & { queued: number; running: number; canceled: number; succeeded: number } {
    const counts = this.prepare('SELECT status, n, skipped FROM job_counts WHERE job_id = ?').all(jobId) as Array<{ status: ImageStatus; n: number; skipped: number }>;
    const count = (status: ImageStatus) => counts.find((c) => c.status === status)?.n ?? 0;
    const succeeded = count('succeeded');
    return {
      done: succeeded,
      failed: count('failed'),
      total: counts.reduce((sum, c) => sum + c.n, 0),
      skipped: counts.reduce((sum, c) => sum + c.skipped, 0),
      queued: count('queued'),
      running: count('running'),
      canceled: count('canceled'),
      succeeded,
    };
  }

  /**
   * The duplicates report's input: whether the job's pipeline hashes (a phash step), and up to `limit`
   * items with their hash, in index order (`truncated` when there are more). Undefined for an unknown job.
   */
  phashesOf(jobId: string, limit: number): { hashing: boolean; items: Array<{ index: number; name: string; phash: string }>; truncated: boolean } | undefined {
    const job = this.prepare('SELECT pipeline FROM jobs WHERE id = ?').get(jobId) as Pick<JobRow, 'pipeline'> | undefined;
    if (!job) return undefined;
    const hashing = (JSON.parse(job.pipeline) as Array<{ op?: unknown }>).some((step) => step.op === 'phash');
    const items = this
      .prepare(
        `SELECT idx AS "index", name, json_extract(annotations, '$.phash') AS phash FROM images
         WHERE job_id = ? AND status = 'succeeded' AND json_extract(annotations, '$.phash') IS NOT NULL ORDER BY idx LIMIT ?`,
      )
      .all(jobId, limit + 1) as Array<{ index: number; name: string; phash: string }>;
    return { hashing, items: items.slice(0, limit), truncated: items.length > limit };
  }

  imagesOf(jobId: string): ImageRow[] {
    return this.prepare('SELECT * FROM images WHERE job_id = ? ORDER BY idx').all(jobId) as ImageRow[];
  }

  image(jobId: string, index: number): ImageRow | undefined {
    return this.prepare('SELECT * FROM images WHERE job_id = ? AND idx = ?').get(jobId, index) as ImageRow | undefined;
  }

  /**
   * A job's rows at these indexes, by index (those that exist), in one statement: on a WAL database each
   * statement outside a transaction takes and drops a read lock (a few syscalls), which cost the master
   * more than reading the row itself when a claim, a view patch or a downloads request read rows one by one.
   */
  imagesAt(jobId: string, indexes: Iterable<number>): Map<number, ImageRow> {
    const rows = this
      .prepare('SELECT * FROM images WHERE job_id = ? AND idx IN (SELECT value FROM json_each(?))')
      .all(jobId, JSON.stringify([...indexes])) as ImageRow[];
    return new Map(rows.map((row) => [row.idx, row]));
  }

  /**
   * Takes up to limit queued items of one kind, oldest job first; batch jobs with fewer items running go
   * first, so a small job is not stuck behind a 100,000-item one. The jobs and their queued indexes come
   * from memory (claimable, runningItems): no query to find them. The rows are marked running with the
   * next commit (heldWritesMs): a claim only reads, so a refill never waits for the window.
   */
  private claim(kind: JobKind, limit: number): ImageRow[] {
    const candidates = this.claimable[kind];
    if (limit <= 0 || candidates.size === 0) return [];
    const running = (id: string) => (kind === 'batch' ? (this.runningItems.get(id) ?? 0) : 0);
    const jobs = [...candidates.entries()].sort(
      ([a, { createdAt: createdA }], [b, { createdAt: createdB }]) => running(a) - running(b) || createdA - createdB || (a < b ? -1 : a > b ? 1 : 0),
    );
    const claimed: ImageRow[] = [];
    for (const [id, { queued }] of jobs) {
      if (claimed.length >= limit) break;
      let taken = 0;
      const indexes = queued.take(limit - claimed.length);
      // Read by their keys (a query by status was compiled anew on most runs); a row no longer queued
      // (canceled, stopped) is passed over.
      const rows = this.imagesAt(id, indexes);
      for (const index of indexes) {
        const row = rows.get(index);
        if (row?.status !== 'queued') continue;
        addTo(this.held.claims, id, index);
        claimed.push(row);
        taken += 1;
      }
      if (queued.size === 0) candidates.delete(id);
      if (kind === 'batch' && taken > 0) this.runningItems.set(id, running(id) + taken);
    }
    if (claimed.length > 0) this.hold(claimed.length);
    return claimed;
  }

  /** Claims up to limit queued uploaded images (oldest job first; see claim) and returns them. */
  claimQueuedImages(limit: number): ImageWork[] {
    const rows = this.claim('upload', limit);
    const jobs = new Map<string, JobRow>();
    const jobOf = (id: string) => {
      let job = jobs.get(id);
      if (!job) jobs.set(id, (job = this.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow));
      return job;
    };
    return rows.map((row) => {
      const job = jobOf(row.job_id);
      return {
        jobId: row.job_id,
        index: row.idx,
        name: row.name,
        width: row.in_width ?? 0,
        height: row.in_height ?? 0,
        channels: row.in_channels ?? 0,
        inputFormat: row.in_format ?? '',
        inputProgressive: row.in_progressive === 1,
        inputTurned: row.in_turned === 1,
        inputPlain: row.in_plain === 1,
        pipeline: JSON.parse(job.pipeline) as unknown[],
        ...(job.format === null ? {} : { format: job.format }),
        ...(job.quality === null ? {} : { quality: job.quality }),
        ...(job.options === null ? {} : { options: JSON.parse(job.options) as OutputOptions }),
      };
    });
  }

  /** Claims up to limit queued batch items (fewest running, then oldest job first; see claim) and returns them. */
  claimQueuedItems(limit: number): ItemWork[] {
    return this.claim('batch', limit).map((row) => ({
      jobId: row.job_id,
      index: row.idx,
      name: row.name,
      source: row.source ?? '',
      ...(row.source_version === null ? {} : { version: { fingerprint: row.source_version, size: row.source_size ?? 0 } }),
    }));
  }

  /**
   * Re-queues a job's failed items (and, for a job that maxFailures stopped, the items it never ran).
   * Returns how many, or undefined for an unknown job.
   */
  retryFailed(jobId: string): number | undefined {
    const retried = this.transaction(() => {
      const job = this.prepare('SELECT status, error, kind, created_at FROM jobs WHERE id = ?').get(jobId) as
        | Pick<JobRow, 'status' | 'error' | 'kind' | 'created_at'>
        | undefined;
      if (!job) return undefined;
      const stopped = job.error !== null && job.status !== 'canceled';
      // The listed version is forgotten: a retried item reads its input's version anew (it may have changed since).
      const changed = this
        .prepare(
          `UPDATE images SET status = 'queued', error = NULL, error_kind = NULL, started_at = NULL, source_version = NULL, source_size = NULL
           WHERE job_id = ? AND (status = 'failed' OR (? AND status = 'canceled'))`,
        )
        .run(jobId, stopped ? 1 : 0).changes;
      if (changed > 0) {
        this.prepare(`UPDATE jobs SET status = 'running', error = NULL, finished_at = NULL, manifest_written = 0 WHERE id = ?`).run(jobId);
        this.refreshJobStatus(jobId);
        // The held claims were written first (transaction): the queued rows are exactly the claimable ones.
        this.requeueFromTable(jobId, job.kind, job.created_at);
      }
      return changed;
    });
    if (retried) this.emit('job', jobId);
    return retried;
  }

  /** Stops a job that is failing wholesale: its queued items are canceled and the reason is kept. */
  stopJob(jobId: string, reason: string): void {
    this.transaction(() => {
      this.prepare('UPDATE jobs SET error = ?, listed = 1 WHERE id = ?').run(reason, jobId);
      this.prepare("UPDATE images SET status = 'canceled' WHERE job_id = ? AND status = 'queued'").run(jobId);
      this.refreshJobStatus(jobId);
    });
    this.claimable.batch.delete(jobId);
    this.emit('job', jobId);
  }

  /** What a batch output was last written with, to skip rewriting it. */
  outputRecord(uri: string): OutputRecord | undefined {
    const row = this.prepare('SELECT uri, content_key, fingerprint FROM outputs WHERE uri = ?').get(uri) as
      | { uri: string; content_key: string; fingerprint: string }
      | undefined;
    return row && { uri: row.uri, contentKey: row.content_key, fingerprint: row.fingerprint };
  }

  /** After a restart nothing is running: images that were mid-flight go back to the queue. */
  requeueInterruptedImages(): number {
    const jobs = this.prepare("SELECT DISTINCT job_id FROM images WHERE status = 'running'").all() as Array<{ job_id: string }>;
    const changed = this.prepare("UPDATE images SET status = 'queued' WHERE status = 'running'").run().changes;
    for (const { job_id } of jobs) this.refreshJobStatus(job_id);
    this.loadClaimable();
    return changed;
  }

  /**
   * Records an image's outcome. Returns the job's status after the change and whether this change
   * finished the job (for the latency metric).
   */
  finishImage(jobId: string, index: number, outcome: ItemOutcome): FinishedImage {
    return this.finishImages([{ jobId, index, outcome }])[0]!;
  }

  /**
   * Records many outcomes in one transaction (one commit, each job's status worked out once), in
   * order; one result per outcome. A job finished by the batch reports it on its last outcome in it.
   */
  finishImages(outcomes: ReadonlyArray<{ jobId: string; index: number; outcome: ItemOutcome }>): FinishedImage[] {
    const { results, finishedPerJob } = this.transaction(() => this.writeOutcomes(outcomes));
    this.outcomesWritten(finishedPerJob);
    const touched = new Map<string, number[]>();
    for (const { jobId, index } of outcomes) appendTo(touched, jobId, index);
    for (const [jobId, images] of touched) this.emit('job', jobId, images);
    return results;
  }

  /**
   * Records a batch item's outcome with the next commit, at most heldWritesMs from now (see
   * heldWritesMs); `recorded` hears what it did to the job once it is committed.
   */
  finishLater(item: { jobId: string; index: number; outcome: ItemOutcome }, recorded: (result: FinishedImage) => void): void {
    this.held.outcomes.push({ item, recorded });
    this.hold(1);
  }

  /** The outcomes' rows, output records and job statuses (inside a transaction). */
  private writeOutcomes(outcomes: ReadonlyArray<{ jobId: string; index: number; outcome: ItemOutcome }>, startedAt?: ReadonlyMap<string, ReadonlyMap<number, number>>) {
    const jobBefore = this.prepare('SELECT status, created_at, kind FROM jobs WHERE id = ?');
    // One prepared statement per row: passing the batch as one JSON array (UPDATE … FROM json_each) measured
    // slower at the 1-4 outcomes a turn brings.
    const update = this.prepare(
      `UPDATE images SET status = ?, error = ?, width = ?, height = ?, out_format = ?, qr = ?,
         error_kind = ?, outputs = ?, skipped = ?, annotations = ?, started_at = COALESCE(started_at, ?)
       WHERE job_id = ? AND idx = ? AND status NOT IN ('succeeded', 'failed', 'canceled')`,
    );
    const remember = this.prepare(
      `INSERT INTO outputs (uri, content_key, fingerprint) VALUES (?, ?, ?)
       ON CONFLICT(uri) DO UPDATE SET content_key = excluded.content_key, fingerprint = excluded.fingerprint`,
    );
    const dropCheckpoint = this.prepare('DELETE FROM checkpoints WHERE job_id = ? AND idx = ?');
    const finishedPerJob = new Map<string, number>();
    const before = new Map<string, Pick<JobRow, 'status' | 'created_at' | 'kind'> | undefined>();
    for (const { jobId, index, outcome } of outcomes) {
      if (!before.has(jobId)) before.set(jobId, jobBefore.get(jobId) as Pick<JobRow, 'status' | 'created_at' | 'kind'> | undefined);
      const job = before.get(jobId);
      if (!job) continue;
      const changed = update.run(
        outcome.status,
        outcome.error ?? null,
        outcome.width ?? null,
        outcome.height ?? null,
        outcome.outputFormat ?? null,
        outcome.qr ? JSON.stringify(outcome.qr) : null,
        outcome.errorKind ?? null,
        outcome.outputs ? JSON.stringify(outcome.outputs) : null,
        outcome.skipped ? 1 : 0,
        outcome.annotations ? JSON.stringify(outcome.annotations) : null,
        startedAt?.get(jobId)?.get(index) ?? null,
        jobId,
        index,
      ).changes;
      if (changed > 0) finishedPerJob.set(jobId, (finishedPerJob.get(jobId) ?? 0) + 1);
      for (const record of outcome.recorded ?? []) remember.run(record.uri, record.contentKey, record.fingerprint);
      // Only uploaded images tile, so only they have checkpoints.
      if (job.kind === 'upload') dropCheckpoint.run(jobId, index);
    }
    const after = new Map<string, JobStatus>();
    for (const [jobId, job] of before) if (job) after.set(jobId, this.refreshJobStatus(jobId));
    const lastOfJob = new Map(outcomes.map(({ jobId }, position) => [jobId, position]));
    const now = Date.now();
    const results = outcomes.map(({ jobId }, position): FinishedImage => {
      const job = before.get(jobId);
      if (!job) return { status: 'canceled', finished: false, ageMs: 0 };
      const status = after.get(jobId)!;
      return { status, finished: lastOfJob.get(jobId) === position && !isTerminal(job.status) && isTerminal(status), ageMs: now - job.created_at };
    });
    return { results, finishedPerJob };
  }

  /** A batch item is running from its claim until its outcome: each row an outcome changed was one of those. */
  private outcomesWritten(finishedPerJob: ReadonlyMap<string, number>): void {
    for (const [jobId, finished] of finishedPerJob) {
      const left = (this.runningItems.get(jobId) ?? 0) - finished;
      if (left > 0) this.runningItems.set(jobId, left);
      else this.runningItems.delete(jobId);
    }
  }

  /** Cancels a job: images not yet finished become canceled. False when the job is unknown. */
  cancelJob(jobId: string): boolean {
    const changed = this.transaction(() => {
      const job = this.prepare('SELECT status FROM jobs WHERE id = ?').get(jobId) as Pick<JobRow, 'status'> | undefined;
      if (!job) return false;
      if (isTerminal(job.status)) return true;
      this
        .prepare("UPDATE images SET status = 'canceled' WHERE job_id = ? AND status IN ('queued', 'running')")
        .run(jobId);
      this.prepare("UPDATE jobs SET status = 'canceled', finished_at = ? WHERE id = ?").run(Date.now(), jobId);
      return true;
    });
    this.forgetClaims(jobId);
    if (changed) this.emit('job', jobId);
    return changed;
  }

  /**
   * A job is queued until an item runs, running while items are queued or running or inputs are still
   * being listed; then succeeded (no failure), partial (some failed) or failed (none succeeded).
   */
  private refreshJobStatus(jobId: string): JobStatus {
    const job = this.prepare('SELECT status, listed, error FROM jobs WHERE id = ?').get(jobId) as Pick<JobRow, 'status' | 'listed' | 'error'>;
    if (job.status === 'canceled') return 'canceled';
    const counts = this.progressOf(jobId);
    const finished = counts.succeeded + counts.failed + counts.canceled;
    let status: JobStatus;
    if (job.listed === 0 || counts.queued + counts.running > 0) {
      status = counts.running === 0 && finished === 0 ? 'queued' : 'running';
    } else if (counts.failed > 0) {
      status = counts.succeeded > 0 ? 'partial' : 'failed';
    } else if (job.error !== null) {
      status = 'failed';
    } else {
      status = counts.total > 0 && counts.canceled === counts.total ? 'canceled' : 'succeeded';
    }
    if (status !== job.status) {
      this
        .prepare('UPDATE jobs SET status = ?, finished_at = ? WHERE id = ?')
        .run(status, isTerminal(status) ? Date.now() : null, jobId);
    }
    return status;
  }

  /**
   * Images accepted but not finished, and their pixels: the scaler reads it. `uploads` counts only
   * uploaded images (the upload admission limit); `count - uploads` are batch items (their own limit).
   */
  pendingImages(): { count: number; uploads: number; pixels: number; queued: number; queuedPixels: number } {
    // No commit of the held writes here (admission asks on every upload): `count` and `uploads` hold
    // whatever is held (a claim moves an item from queued to running, both counted; a held outcome
    // over-counts for at most the window, on the safe side). `queued` and `queuedPixels` count held
    // claims as queued until they are committed: the scaler's backlog commits them first.
    const counts = this
      .prepare(
        `SELECT COALESCE(SUM(n), 0) AS count, COALESCE(SUM(CASE WHEN status = 'queued' THEN n ELSE 0 END), 0) AS queued
         FROM job_counts WHERE status IN ('queued', 'running')`,
      )
      .get() as { count: number; queued: number };
    // Only uploads have known sizes (batch items are never decoded on the master); the index on
    // (status, source) keeps this to their rows.
    const pixels = this
      .prepare(
        `SELECT COUNT(*) AS uploads, COALESCE(SUM(in_width * in_height), 0) AS pixels,
                COALESCE(SUM(CASE WHEN status = 'queued' THEN in_width * in_height ELSE 0 END), 0) AS queuedPixels
         FROM images WHERE status IN ('queued', 'running') AND source IS NULL`,
      )
      .get() as { uploads: number; pixels: number; queuedPixels: number };
    return { ...counts, ...pixels };
  }

  /**
   * Images accepted and not yet started, grouped by what will be done to them (pipeline, input and
   * output format): the scaler's backlog prices each group at its own cost.
   */
  waitingWork(): WorkItem[] {
    this.commitHeld();
    const rows = this
      .prepare(
        `SELECT j.pipeline AS pipeline, i.in_format AS decode, j.format AS format, COUNT(*) AS units, SUM(i.in_width * i.in_height) AS pixels
         FROM images i JOIN jobs j ON j.id = i.job_id
         WHERE i.status = 'queued'
         GROUP BY j.pipeline, i.in_format, j.format`,
      )
      .all() as Array<{ pipeline: string; decode: string; format: string | null; units: number; pixels: number }>;
    return rows.map((row) => ({
      kind: { pipeline: JSON.parse(row.pipeline), decode: row.decode, encode: row.format ?? outputFormatFor(row.decode as InputFormat) },
      pixels: row.pixels,
      units: row.units,
      runningMs: 0,
    }));
  }

  /** Finished jobs older than the cutoff (epoch ms). */
  finishedJobsBefore(cutoff: number): string[] {
    return (
      this.prepare('SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?').all(cutoff) as Array<{ id: string }>
    ).map((row) => row.id);
  }

  deleteJob(jobId: string): void {
    this.prepare('DELETE FROM jobs WHERE id = ?').run(jobId);
    this.forgetClaims(jobId);
    this.batchSpecs.delete(jobId);
  }

  /** A job that has nothing queued or running any more (canceled or deleted). */
  private forgetClaims(jobId: string): void {
    for (const jobs of Object.values(this.claimable)) jobs.delete(jobId);
    this.runningItems.delete(jobId);
  }

  /** Images whose first unit a worker took: they show as running once the next commit writes it (heldWritesMs). */
  markImagesStarted(images: ReadonlyArray<{ jobId: string; index: number }>): void {
    const at = Date.now();
    for (const { jobId, index } of images) this.held.started.push({ jobId, index, at });
    if (images.length > 0) this.hold(images.length);
  }

  /** Tiling progress of one image, so a restarted master resumes instead of starting over. */
  loadCheckpoint(jobId: string, index: number): string | undefined {
    const row = this.prepare('SELECT state FROM checkpoints WHERE job_id = ? AND idx = ?').get(jobId, index) as
      | { state: string }
      | undefined;
    return row?.state;
  }

  saveCheckpoint(jobId: string, index: number, state: string): void {
    this
      .prepare('INSERT INTO checkpoints (job_id, idx, state) VALUES (?, ?, ?) ON CONFLICT(job_id, idx) DO UPDATE SET state = excluded.state')
      .run(jobId, index, state);
  }
}

function addTo<K, V>(sets: Map<K, Set<V>>, key: K, value: V): void {
  const set = sets.get(key);
  if (set) set.add(value);
  else sets.set(key, new Set([value]));
}

function appendTo<K, V>(lists: Map<K, V[]>, key: K, value: V): void {
  const list = lists.get(key);
  if (list) list.push(value);
  else lists.set(key, [value]);
}

function toSummary(job: JobRow, progress: Progress): JobSummary & JobView {
  return {
    id: job.id,
    status: job.status,
    progress: { done: progress.done, failed: progress.failed, total: progress.total, skipped: progress.skipped },
    createdAt: new Date(job.created_at).toISOString(),
    ...(job.finished_at === null ? {} : { finishedAt: new Date(job.finished_at).toISOString() }),
    kind: job.kind,
    ...(job.error === null ? {} : { error: job.error }),
  };
}

function toItemView(row: ImageRow): ItemView {
  const outputs = row.outputs === null ? [] : (JSON.parse(row.outputs) as string[]);
  return {
    ...toImageView(row),
    ...(row.error_kind === null ? {} : { errorKind: row.error_kind }),
    ...(row.source === null ? {} : { input: row.source }),
    ...(outputs.length > 0 ? { output: outputs[0] } : {}),
    ...(outputs.length > 1 ? { outputs } : {}),
    ...(row.skipped ? { skipped: true } : {}),
  };
}

/** Item statuses a query may filter on; anything else is a 400. */
export function parseItemStatus(value: string | undefined): ImageStatus | undefined {
  if (value === undefined || value === '') return undefined;
  if (!itemStatuses.has(value)) throw new RangeError(`status "${value}" is not one of ${[...itemStatuses].join(', ')}`);
  return value as ImageStatus;
}

const encodeCursor = (position: { createdAt: number; id: string }): string => Buffer.from(JSON.stringify(position)).toString('base64url');

function decodeCursor(cursor: string): { createdAt: number; id: string } | undefined {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { createdAt?: unknown; id?: unknown };
    if (typeof value.createdAt === 'number' && typeof value.id === 'string') return { createdAt: value.createdAt, id: value.id };
  } catch {
    // fall through: an unreadable cursor starts from the newest
  }
  throw new RangeError(`cursor "${cursor}" is not one this master gave out`);
}

/** An items page's cursor: the last index of the page before, as its `next` gave it. */
function decodeItemCursor(cursor: string): number {
  if (!/^\d{1,15}$/.test(cursor)) throw new RangeError(`cursor "${cursor}" is not one this master gave out`);
  return Number(cursor);
}

/** An outcome's annotations as the store keeps them: QR texts in their own column (the contract's images[].qr), the rest together. */
export function splitAnnotations(annotations: Record<string, unknown> | undefined): Pick<ImageOutcome, 'qr' | 'annotations'> {
  if (!annotations) return {};
  const { qr, ...rest } = annotations;
  return { ...(Array.isArray(qr) ? { qr: qr as string[] } : {}), ...(Object.keys(rest).length > 0 ? { annotations: rest } : {}) };
}

/** An item's annotations: every analysis step's result by op name, QR texts (also kept in `qr`) included. */
function annotationsOf(row: ImageRow): Record<string, unknown> | undefined {
  const annotations = {
    ...(row.annotations === null ? {} : (JSON.parse(row.annotations) as Record<string, unknown>)),
    ...(row.qr === null ? {} : { qr: JSON.parse(row.qr) as string[] }),
  };
  return Object.keys(annotations).length > 0 ? annotations : undefined;
}

function toImageView(row: ImageRow): ImageView {
  const annotations = annotationsOf(row);
  return {
    index: row.idx,
    name: row.name,
    status: row.status === 'running' && row.started_at === null ? 'queued' : row.status,
    ...(row.error === null ? {} : { error: row.error }),
    ...(row.width === null ? {} : { width: row.width }),
    ...(row.height === null ? {} : { height: row.height }),
    ...(row.qr === null ? {} : { qr: JSON.parse(row.qr) as string[] }),
    ...(annotations ? { annotations } : {}),
  };
}
