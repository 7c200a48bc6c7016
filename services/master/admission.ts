import { statfs } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { MasterConfig } from '../shared/config.js';
import { HttpError } from '../shared/http-error.js';

export type AdmissionLimits = Pick<MasterConfig, 'maxQueuedImages' | 'maxRequestBytes' | 'minFreeDiskBytes' | 'maxJobPixels'>;

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
 * Capacity a request holds while it is received and stored: the disk bytes it may write and, once its
 * images are known, their places in the queue. Release it once the job is committed (its images are then
 * counted by the store) or has failed; releasing twice is harmless.
 */
export interface Reservation {
  readonly bytes: number;
  /** Claims queue places and checks the pixel budget for the job's images; throws 413/429. */
  reserveImages(images: ReadonlyArray<{ width: number; height: number }>): void;
  release(): void;
}

/**
 * Admission control for POST /v1/jobs. Every check and the reservation it grants happen in one
 * synchronous step (no await between them), so concurrent requests cannot all pass the same check:
 * the sum of what is reserved and what the store already holds never exceeds a limit.
 */
export class Admission {
  private reservedBytes = 0;
  private reservedImages = 0;

  constructor(
    private readonly limits: AdmissionLimits,
    /** Images accepted and not finished (the store's count). */
    private readonly pendingImages: () => number,
    /** Free bytes where uploads and results are written. */
    private readonly diskFree: () => Promise<number>,
  ) {}

  /**
   * Admits a request before its body is read: refuses it when its declared size is over the limit, the
   * queue is full, or writing it could bring the disk below the reserve. A body without a declared
   * length reserves the largest request allowed.
   */
  async admit(req: IncomingMessage): Promise<Reservation> {
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    const { maxRequestBytes, maxQueuedImages, minFreeDiskBytes } = this.limits;
    if (declared !== undefined && declared > maxRequestBytes) {
      throw new HttpError(413, 'request_too_large', `the request is ${declared} bytes; at most ${maxRequestBytes} bytes are accepted (DIPS_MAX_REQUEST_BYTES)`);
    }
    this.checkQueue(0);
    const free = await this.diskFree();
    const bytes = declared ?? maxRequestBytes;
    // After the await: other requests may have reserved meanwhile, and this step counts them.
    this.checkQueue(0);
    if (free - this.reservedBytes - bytes < minFreeDiskBytes) {
      throw new HttpError(
        503,
        'insufficient_storage',
        `the master's disk has ${free - this.reservedBytes} bytes free for uploads and keeps ${minFreeDiskBytes} in reserve; this request needs ${bytes}; retry later`,
        diskRetryAfterSeconds,
      );
    }
    this.reservedBytes += bytes;
    let images = 0;
    let released = false;
    return {
      bytes,
      reserveImages: (list) => {
        checkJobPixels(list, this.limits.maxJobPixels);
        this.checkQueue(list.length);
        this.reservedImages += list.length;
        images += list.length;
      },
      release: () => {
        if (released) return;
        released = true;
        this.reservedBytes -= bytes;
        this.reservedImages -= images;
      },
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
