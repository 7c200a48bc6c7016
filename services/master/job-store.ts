import { EventEmitter } from 'node:events';
import path from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { isTerminalStatus, type ImageStatus, type ImageView, type JobStatus, type JobView } from '../protocol/api.js';
import type { InputFormat } from '../image-core/decode.js';
import { outputFormatFor } from '../image-core/encode.js';
import type { WorkItem } from '../scaler/work.js';

export type { ImageStatus, ImageView, JobStatus, JobView };

export interface NewImage {
  name: string;
  width: number;
  height: number;
  channels: number;
  format: string;
}

export interface NewJob {
  id: string;
  pipeline: unknown[];
  format?: string;
  quality?: number;
  images: NewImage[];
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
  pipeline: unknown[];
  format?: string;
  quality?: number;
}

export interface ImageOutcome {
  status: 'succeeded' | 'failed' | 'canceled';
  error?: string;
  width?: number;
  height?: number;
  outputFormat?: string;
  qr?: string[];
}

export interface ImageRow {
  job_id: string;
  idx: number;
  name: string;
  status: ImageStatus;
  error: string | null;
  in_width: number;
  in_height: number;
  in_channels: number;
  in_format: string;
  width: number | null;
  height: number | null;
  out_format: string | null;
  qr: string | null;
  started_at: number | null;
}

interface JobRow {
  id: string;
  status: JobStatus;
  pipeline: string;
  format: string | null;
  quality: number | null;
  created_at: number;
  finished_at: number | null;
}

type Parameters = SQLInputValue[];
interface Statement {
  run(...params: Parameters): { changes: number };
  get(...params: Parameters): unknown;
  all(...params: Parameters): unknown[];
}

export const isTerminal = isTerminalStatus;

const schema = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  pipeline TEXT NOT NULL,
  format TEXT,
  quality INTEGER,
  created_at INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE TABLE IF NOT EXISTS images (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  name TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT,
  in_width INTEGER NOT NULL,
  in_height INTEGER NOT NULL,
  in_channels INTEGER NOT NULL,
  in_format TEXT NOT NULL,
  width INTEGER,
  height INTEGER,
  out_format TEXT,
  qr TEXT,
  -- set when a worker first takes the image (or one of its tiles): until then it shows as queued
  started_at INTEGER,
  PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS images_by_status ON images(status);
-- the lease journal of earlier versions: leases live in the dispatcher, restarts resume from images and checkpoints
DROP TABLE IF EXISTS tasks;
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
 * Emits 'job' with the job id whenever a job's visible state changes.
 */
export class JobStore extends EventEmitter<{ job: [string] }> {
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, Statement>();

  constructor(dataDir: string) {
    super();
    this.setMaxListeners(0);
    this.db = new DatabaseSync(path.join(dataDir, 'dips.sqlite'));
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;');
    this.db.exec(schema);
  }

  close(): void {
    this.db.close();
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

  /** Runs `work` in one transaction: all of its writes land together, or none do. */
  private transaction<T>(work: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = work();
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  createJob(job: NewJob): void {
    const insertJob = this.prepare(
      'INSERT INTO jobs (id, status, pipeline, format, quality, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const insertImage = this.prepare(
      `INSERT INTO images (job_id, idx, name, status, in_width, in_height, in_channels, in_format)
       VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)`,
    );
    this.transaction(() => {
      insertJob.run(job.id, 'queued', JSON.stringify(job.pipeline), job.format ?? null, job.quality ?? null, Date.now());
      job.images.forEach((image, index) =>
        insertImage.run(job.id, index, image.name, image.width, image.height, image.channels, image.format),
      );
    });
    this.emit('job', job.id);
  }

  getJob(id: string): JobView | undefined {
    const job = this.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    if (!job) return undefined;
    const images = this.imagesOf(id).map(toImageView);
    // Claimed images wait in the dispatcher's queue until a worker takes them: still queued to the user.
    const status = job.status === 'running' && images.every((image) => image.status === 'queued') ? 'queued' : job.status;
    return {
      id: job.id,
      status,
      progress: { done: images.filter((image) => isTerminal(image.status)).length, total: images.length },
      images,
      createdAt: new Date(job.created_at).toISOString(),
      ...(job.finished_at === null ? {} : { finishedAt: new Date(job.finished_at).toISOString() }),
    };
  }

  imagesOf(jobId: string): ImageRow[] {
    return this.prepare('SELECT * FROM images WHERE job_id = ? ORDER BY idx').all(jobId) as ImageRow[];
  }

  image(jobId: string, index: number): ImageRow | undefined {
    return this.prepare('SELECT * FROM images WHERE job_id = ? AND idx = ?').get(jobId, index) as ImageRow | undefined;
  }

  /** Marks up to limit queued images running (oldest job first) and returns them. */
  claimQueuedImages(limit: number): ImageWork[] {
    if (limit <= 0) return [];
    const rows = this
      .prepare(
        `SELECT i.*, j.pipeline, j.format, j.quality FROM images i JOIN jobs j ON j.id = i.job_id
         WHERE i.status = 'queued' ORDER BY j.created_at, i.job_id, i.idx LIMIT ?`,
      )
      .all(limit) as Array<ImageRow & { pipeline: string; format: string | null; quality: number | null }>;
    const markRunning = this.prepare("UPDATE images SET status = 'running' WHERE job_id = ? AND idx = ?");
    const touched = new Set<string>();
    this.transaction(() => {
      for (const row of rows) {
        markRunning.run(row.job_id, row.idx);
        touched.add(row.job_id);
      }
      for (const jobId of touched) this.refreshJobStatus(jobId);
    });
    for (const jobId of touched) this.emit('job', jobId);
    return rows.map((row) => ({
      jobId: row.job_id,
      index: row.idx,
      name: row.name,
      width: row.in_width,
      height: row.in_height,
      channels: row.in_channels,
      inputFormat: row.in_format,
      pipeline: JSON.parse(row.pipeline) as unknown[],
      ...(row.format === null ? {} : { format: row.format }),
      ...(row.quality === null ? {} : { quality: row.quality }),
    }));
  }

  /** After a restart nothing is running: images that were mid-flight go back to the queue. */
  requeueInterruptedImages(): number {
    const jobs = this.prepare("SELECT DISTINCT job_id FROM images WHERE status = 'running'").all() as Array<{ job_id: string }>;
    const changed = this.prepare("UPDATE images SET status = 'queued' WHERE status = 'running'").run().changes;
    for (const { job_id } of jobs) this.refreshJobStatus(job_id);
    return changed;
  }

  /**
   * Records an image's outcome. Returns the job's status after the change and whether this change
   * finished the job (for the latency metric).
   */
  finishImage(jobId: string, index: number, outcome: ImageOutcome): { status: JobStatus; finished: boolean; ageMs: number } {
    const result = this.transaction(() => {
      const before = this.prepare('SELECT status, created_at FROM jobs WHERE id = ?').get(jobId) as
        | Pick<JobRow, 'status' | 'created_at'>
        | undefined;
      if (!before) return { status: 'canceled' as JobStatus, finished: false, ageMs: 0 };
      this
        .prepare(
          `UPDATE images SET status = ?, error = ?, width = ?, height = ?, out_format = ?, qr = ?
           WHERE job_id = ? AND idx = ? AND status NOT IN ('succeeded', 'failed', 'canceled')`,
        )
        .run(
          outcome.status,
          outcome.error ?? null,
          outcome.width ?? null,
          outcome.height ?? null,
          outcome.outputFormat ?? null,
          outcome.qr ? JSON.stringify(outcome.qr) : null,
          jobId,
          index,
        );
      this.prepare('DELETE FROM checkpoints WHERE job_id = ? AND idx = ?').run(jobId, index);
      const status = this.refreshJobStatus(jobId);
      return { status, finished: !isTerminal(before.status) && isTerminal(status), ageMs: Date.now() - before.created_at };
    });
    this.emit('job', jobId);
    return result;
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
    if (changed) this.emit('job', jobId);
    return changed;
  }

  private refreshJobStatus(jobId: string): JobStatus {
    const job = this.prepare('SELECT status FROM jobs WHERE id = ?').get(jobId) as Pick<JobRow, 'status'>;
    if (job.status === 'canceled') return 'canceled';
    const counts = this
      .prepare('SELECT status, COUNT(*) AS n FROM images WHERE job_id = ? GROUP BY status')
      .all(jobId) as Array<{ status: ImageStatus; n: number }>;
    const count = (status: ImageStatus) => counts.find((c) => c.status === status)?.n ?? 0;
    const total = counts.reduce((sum, c) => sum + c.n, 0);
    let status: JobStatus;
    if (count('queued') + count('running') > 0) {
      status = count('queued') === total ? 'queued' : 'running';
    } else {
      // Some failed, some succeeded: partial (its results can be downloaded); failed means none succeeded.
      if (count('failed') > 0) status = count('succeeded') > 0 ? 'partial' : 'failed';
      else status = count('canceled') === total ? 'canceled' : 'succeeded';
    }
    if (status !== job.status) {
      this
        .prepare('UPDATE jobs SET status = ?, finished_at = ? WHERE id = ?')
        .run(status, isTerminal(status) ? Date.now() : null, jobId);
    }
    return status;
  }

  /** Images accepted but not finished, and their pixels: the admission limit and the scaler read it. */
  pendingImages(): { count: number; pixels: number; queued: number; queuedPixels: number } {
    const row = this
      .prepare(
        `SELECT COUNT(*) AS count, COALESCE(SUM(in_width * in_height), 0) AS pixels,
                COALESCE(SUM(status = 'queued'), 0) AS queued,
                COALESCE(SUM(CASE WHEN status = 'queued' THEN in_width * in_height ELSE 0 END), 0) AS queuedPixels
         FROM images WHERE status IN ('queued', 'running')`,
      )
      .get() as { count: number; pixels: number; queued: number; queuedPixels: number };
    return row;
  }

  /**
   * Images accepted and not yet started, grouped by what will be done to them (pipeline, input and
   * output format): the scaler's backlog prices each group at its own cost.
   */
  waitingWork(): WorkItem[] {
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
  }

  /** Images whose first unit a worker took (in one transaction per batch): they show as running from now. */
  markImagesStarted(images: ReadonlyArray<{ jobId: string; index: number }>): void {
    const markStarted = this.prepare('UPDATE images SET started_at = ? WHERE job_id = ? AND idx = ? AND started_at IS NULL');
    const now = Date.now();
    const started = new Set<string>();
    this.transaction(() => {
      for (const { jobId, index } of images) if (markStarted.run(now, jobId, index).changes > 0) started.add(jobId);
    });
    for (const jobId of started) this.emit('job', jobId);
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

function toImageView(row: ImageRow): ImageView {
  return {
    index: row.idx,
    name: row.name,
    status: row.status === 'running' && row.started_at === null ? 'queued' : row.status,
    ...(row.error === null ? {} : { error: row.error }),
    ...(row.width === null ? {} : { width: row.width }),
    ...(row.height === null ? {} : { height: row.height }),
    ...(row.qr === null ? {} : { qr: JSON.parse(row.qr) as string[] }),
  };
}
