import { statfs } from 'node:fs/promises';
import { HttpError } from '../shared/http-error.js';
/** Free bytes on the volume holding dir (what an unprivileged process may still write). */
export async function freeDiskBytes(dir) {
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
/**
 * The disk space promised to uploads, whether a multipart POST /v1/jobs or a local upload session's PUT:
 * one budget, so neither can spend what the other was promised, and one refusal (503, Retry-After).
 * Each check and the hold it grants happen in one synchronous step after the reading, so concurrent
 * writes cannot all pass the same check. Bytes kept since the last reading count as used until the
 * next reading sees them on the disk.
 */
export class UploadDisk {
    minFreeDiskBytes;
    diskFree;
    now;
    reading;
    heldBytes = 0;
    constructor(minFreeDiskBytes, 
    /** Free bytes where uploads and results are written (freeDiskBytes). */
    diskFree, now = Date.now) {
        this.minFreeDiskBytes = minFreeDiskBytes;
        this.diskFree = diskFree;
        this.now = now;
    }
    /** Holds `bytes` for `what` (named in the refusal), or refuses with 503 when they would bring the disk below the reserve. */
    async hold(bytes, what) {
        if (!this.reading || this.now() - this.reading.at >= diskReadingMs)
            this.reading = { at: this.now(), free: await this.diskFree() };
        // After the await: other writes may have been granted meanwhile, and this step counts them.
        const reading = this.reading;
        const free = reading.free - this.heldBytes;
        if (free - bytes < this.minFreeDiskBytes) {
            throw new HttpError(503, 'insufficient_storage', `the master's disk has ${free} bytes free for uploads and keeps ${this.minFreeDiskBytes} in reserve; ${what} needs ${bytes}; retry later`, diskRetryAfterSeconds);
        }
        this.heldBytes += bytes;
        let done = false;
        const end = (kept) => {
            if (done)
                return;
            done = true;
            this.heldBytes -= bytes;
            if (kept && this.reading === reading)
                reading.free -= bytes;
        };
        return { kept: () => end(true), release: () => end(false) };
    }
}
/**
 * Admission control for POST /v1/jobs. Every check and the reservation it grants happen in one
 * synchronous step (no await between them), so concurrent requests cannot all pass the same check:
 * the sum of what is reserved and what the store already holds never exceeds a limit.
 */
export class Admission {
    limits;
    pendingImages;
    disk;
    reservedImages = 0;
    constructor(limits, 
    /** Images accepted and not finished (the store's count). */
    pendingImages, disk) {
        this.limits = limits;
        this.pendingImages = pendingImages;
        this.disk = disk;
    }
    /**
     * Admits a request before its body is read: refuses it when its declared size is over the limit, the
     * queue is full, or writing it could bring the disk below the reserve. A body without a declared
     * length reserves the largest request allowed.
     */
    async admit(req) {
        const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
        const { maxRequestBytes } = this.limits;
        if (declared !== undefined && declared > maxRequestBytes) {
            throw new HttpError(413, 'request_too_large', `the request is ${declared} bytes; at most ${maxRequestBytes} bytes are accepted (DIPS_MAX_REQUEST_BYTES)`);
        }
        this.checkQueue(0);
        const bytes = declared ?? maxRequestBytes;
        const disk = await this.disk.hold(bytes, 'this request');
        try {
            // After the await: other requests may have reserved meanwhile, and this step counts them.
            this.checkQueue(0);
        }
        catch (error) {
            disk.release();
            throw error;
        }
        let images = 0;
        let ended = false;
        const end = (committed) => {
            if (ended)
                return;
            ended = true;
            this.reservedImages -= images;
            if (committed)
                disk.kept();
            else
                disk.release();
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
    checkQueue(adding) {
        const held = this.pendingImages() + this.reservedImages;
        const max = this.limits.maxQueuedImages;
        if (adding === 0 ? held >= max : held + adding > max) {
            const what = adding === 0 ? `the queue holds ${max} images` : `the queue cannot take ${adding} more images (${held} of ${max} taken)`;
            throw new HttpError(429, 'saturated', `${what}; retry later`, queueRetryAfterSeconds);
        }
    }
}
/** The per-job pixel budget: the sum of the input images' pixels. */
function checkJobPixels(images, maxJobPixels) {
    const pixels = images.reduce((sum, image) => sum + image.width * image.height, 0);
    if (pixels > maxJobPixels) {
        throw new HttpError(413, 'job_too_many_pixels', `the job's images hold ${pixels} pixels together; at most ${maxJobPixels} per job (DIPS_MAX_JOB_PIXELS)`);
    }
}
//# sourceMappingURL=admission.js.map