/**
 * The pixel memory a worker lends to whole stages, so that the tasks it runs at once never need more
 * than it has. The planner admits one whole stage of up to PIXEL_MEMORY_SHARE of a worker's memory, and a
 * worker runs a task per slot: two such stages at once (a contour trace of a 44 MP photo each) took a
 * worker to 746 MiB, more than a 1 GiB micro leaves it; one at a time, 461 MiB.
 *
 * A task holds the bytes its whole stage needs (planner.ts wholeStageBytes), or what its decode holds
 * (a whole frame of GIF, WebP, AVIF or interlaced PNG, a progressive JPEG's coefficients:
 * OpenedInput.frameBytes), while it runs. A task that would pass the capacity
 * waits, in arrival order, so that a large one is not passed over for ever by smaller ones. Other work
 * holds nothing and never waits.
 *
 * Memory given back is not free until V8 collects the stage's buffers, and nothing makes it do so while
 * the next stage allocates: one process tracing contours twice in a row peaked at 637 MiB, and at 478
 * with a full collection between the two. So a large hold (a quarter of the capacity or more, a stage of
 * a second or so) ends with `collect` (the worker's V8 gc, exposed by workerNodeArgs), which costs
 * 10-30 ms.
 */
export class MemoryGate {
  private held = 0;
  private readonly waiting: Array<{ bytes: number; admit: () => void }> = [];

  constructor(
    readonly capacity: number,
    private readonly collect?: () => void,
  ) {}

  /** Bytes held by the tasks running now. */
  get heldBytes(): number {
    return this.held;
  }

  /** Tasks waiting for memory. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs `work` holding `bytes` (at most the whole capacity: a stage the planner let through runs, alone
   * if it must). Waiting ends with the signal's reason when it aborts.
   */
  async hold<T>(bytes: number, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const need = Math.min(Math.max(0, bytes), this.capacity);
    if (need === 0) return work();
    await this.acquire(need, signal);
    try {
      return await work();
    } finally {
      this.held -= need;
      if (need >= this.capacity / 4) this.collect?.();
      this.admitWaiting();
    }
  }

  private acquire(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.waiting.length === 0 && this.held + bytes <= this.capacity) {
      this.held += bytes;
      return Promise.resolve();
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        // The task at the head may have been what kept the ones behind it waiting.
        this.admitWaiting();
        reject(signal!.reason);
      };
      const waiter = {
        bytes,
        admit: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private admitWaiting(): void {
    while (this.waiting.length > 0 && this.held + this.waiting[0]!.bytes <= this.capacity) {
      const next = this.waiting.shift()!;
      this.held += next.bytes;
      next.admit();
    }
  }
}
