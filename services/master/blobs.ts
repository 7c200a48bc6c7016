import { Readable } from 'node:stream';
import type { Location } from '../protocol/tasks.js';

/** What the master serves at /v1/blobs/{lease}/in (read) or accepts at /v1/blobs/{lease}/out (write). */
export interface Blob {
  read?(): Promise<Readable>;
  write?(body: Readable): Promise<void>;
}

/**
 * Bytes the master serves to workers that cannot reach them otherwise: a local-storage object for a
 * worker on another machine (a whole object, or a byte range of a tiled image's intermediate). Each belongs to one
 * lease and is dropped when the lease closes, so a late or forged request finds nothing.
 */
export class Blobs {
  private readonly entries = new Map<string, Blob>();

  offer(lease: string, direction: 'in' | 'out', blob: Blob): Location {
    this.entries.set(`${lease}/${direction}`, blob);
    return { via: 'master', path: `/v1/blobs/${lease}/${direction}` };
  }

  get(lease: string, direction: string): Blob | undefined {
    return this.entries.get(`${lease}/${direction}`);
  }

  drop(lease: string): void {
    this.entries.delete(`${lease}/in`);
    this.entries.delete(`${lease}/out`);
  }
}

/** A blob that serves buffers held in memory. */
export const bufferSource = (parts: readonly Buffer[]): Blob => ({ read: async () => Readable.from(parts) });

/** A blob that collects what is written into memory, at most `limit` bytes; `result` resolves with it. */
export function bufferSink(limit: number): { blob: Blob; result: () => Buffer } {
  let received: Buffer | undefined;
  return {
    blob: {
      write: async (body) => {
        const chunks: Buffer[] = [];
        let length = 0;
        for await (const chunk of body as AsyncIterable<Buffer>) {
          length += chunk.length;
          if (length > limit) throw new Error(`written body exceeds ${limit} bytes`);
          chunks.push(chunk);
        }
        received = Buffer.concat(chunks);
      },
    },
    result: () => {
      if (!received) throw new Error('the worker reported the unit done without writing its output');
      return received;
    },
  };
}
