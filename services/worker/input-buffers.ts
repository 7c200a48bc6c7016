/**
 * The buffers a worker reads task inputs into over HTTP (S3 mode, master blobs), kept from one task to
 * the next. A fresh 200 kB Buffer per photo is memory V8 counts outside its heap, and that count is
 * what starts its full collections in S3 mode (node-args.ts). With undici's dispatcher (storage-transfer.ts)
 * the two took the S3 workers' JavaScript thread and V8's helpers from 1.50 to 1.29 ms per photo, and
 * the dispatcher alone about half of that (docs/performance.md, seventeenth round).
 *
 * A buffer is lent by `take` and comes back by `give` once nothing reads it any more: sharp holds an
 * input only while its calls run, so a task gives its input back when it has finished (run-task.ts).
 * One given back twice, or never lent, is ignored, so two tasks can never read into the same memory.
 */
export class InputBuffers {
  private readonly free: ArrayBuffer[] = [];
  /** Weakly: a buffer lent and never given back (a tile's input, a failed read) is simply collected. */
  private readonly lent = new WeakSet<ArrayBuffer>();

  /**
   * `kept`: how many buffers wait between tasks (one per task slot). Inputs over `largestBytes` get a
   * buffer of their own that is not kept, so the memory kept is at most kept × largestBytes.
   */
  constructor(
    private readonly kept: number,
    private readonly largestBytes = defaultLargestBytes,
  ) {}

  /** A buffer of exactly `length` bytes, its content undefined: a kept one if one is large enough. */
  take(length: number): Buffer {
    if (length > this.largestBytes) return Buffer.allocUnsafeSlow(length);
    const fits = this.free.findIndex((buffer) => buffer.byteLength >= length);
    // Rounded up to a power of two (a photo's size varies from task to task), so that a kept buffer fits most inputs after it.
    const memory = fits >= 0 ? this.free.splice(fits, 1)[0]! : new ArrayBuffer(Math.min(this.largestBytes, Math.max(smallestBytes, 2 ** Math.ceil(Math.log2(length)))));
    this.lent.add(memory);
    return Buffer.from(memory, 0, length);
  }

  /** Takes back a buffer `take` lent, for a later task. */
  give(buffer: Buffer): void {
    const memory = buffer.buffer as ArrayBuffer;
    if (!this.lent.delete(memory)) return;
    if (this.free.length < this.kept) this.free.push(memory);
  }
}

/** 4 MiB: a 12 MP JPEG is 2-4 MB. Larger inputs (tiles' strips, huge uploads) are rare and allocated each time. */
const defaultLargestBytes = 4 * 2 ** 20;
/** 64 KiB: below it a buffer costs little either way. */
const smallestBytes = 64 * 1024;
