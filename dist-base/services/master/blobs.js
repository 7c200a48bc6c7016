import { Readable } from 'node:stream';
/**
 * Bytes the master serves to workers that cannot reach them otherwise: a local-storage object for a
 * worker on another machine (a whole object, or a byte range of a tiled image's intermediate). Each belongs to one
 * lease and is dropped when the lease closes, so a late or forged request finds nothing.
 */
export class Blobs {
    entries = new Map();
    offer(lease, direction, blob) {
        this.entries.set(`${lease}/${direction}`, blob);
        return { via: 'master', path: `/v1/blobs/${lease}/${direction}` };
    }
    get(lease, direction) {
        return this.entries.get(`${lease}/${direction}`);
    }
    drop(lease) {
        this.entries.delete(`${lease}/in`);
        this.entries.delete(`${lease}/out`);
    }
}
/** A blob that serves buffers held in memory. */
export const bufferSource = (parts) => ({ read: async () => Readable.from(parts) });
/** A blob that collects what is written into memory, at most `limit` bytes; `result` resolves with it. */
export function bufferSink(limit) {
    let received;
    return {
        blob: {
            write: async (body) => {
                const chunks = [];
                let length = 0;
                for await (const chunk of body) {
                    length += chunk.length;
                    if (length > limit)
                        throw new Error(`written body exceeds ${limit} bytes`);
                    chunks.push(chunk);
                }
                received = Buffer.concat(chunks);
            },
        },
        result: () => {
            if (!received)
                throw new Error('the worker reported the unit done without writing its output');
            return received;
        },
    };
}
//# sourceMappingURL=blobs.js.map