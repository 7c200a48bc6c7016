import { downloadsAnswer, maxDownloadsPerRequest } from '../protocol/api.js';
import { describeErrorResponse } from '../shared/http-error.js';
import { ApiError } from './client.js';
/** Results fetched at once. */
const parallelFetches = 4;
/**
 * A job's finished results are asked for (POST /v1/jobs/{id}/downloads) once this many wait, or this
 * long after the first one began to wait: one request per batch of results rather than one per result,
 * and a download starts at most a second later than it could. Presigned URLs live 15 minutes, far
 * longer than a batch waits to be fetched.
 */
const urlBatchSize = 64;
const urlBatchDelayMs = 1_000;
/**
 * Fetches jobs' finished results, a few at a time, as they are reported. The URLs come in batches
 * from the master; with S3 they are presigned GETs, fetched from the bucket without the token, so
 * the master carries no request per result. A master without the batch route (404 not_found) is
 * asked result by result at GET /v1/jobs/{id}/images/{index}, as before.
 */
export class ResultFetcher {
    client;
    consume;
    waiting = new Map();
    ready = [];
    pending = new Set();
    running = 0;
    failure;
    batchRoute = true;
    constructor(client, consume) {
        this.client = client;
        this.consume = consume;
    }
    /** Queues one finished result (each once: the caller remembers which it offered). */
    add(jobId, index) {
        let batch = this.waiting.get(jobId);
        if (!batch)
            this.waiting.set(jobId, (batch = { indexes: [] }));
        batch.indexes.push(index);
        if (batch.indexes.length >= urlBatchSize)
            this.resolve(jobId);
        else
            batch.timer ??= setTimeout(() => this.resolve(jobId), urlBatchDelayMs);
    }
    /** The job has ended: what it still has waiting is asked for now. */
    flush(jobId) {
        this.resolve(jobId);
    }
    /** Waits for every queued result; throws the first failure. */
    async finished() {
        for (const jobId of [...this.waiting.keys()])
            this.resolve(jobId);
        while (this.pending.size > 0)
            await Promise.race(this.pending);
        if (this.failure)
            throw this.failure;
    }
    resolve(jobId) {
        const batch = this.waiting.get(jobId);
        if (!batch)
            return;
        clearTimeout(batch.timer);
        this.waiting.delete(jobId);
        this.track(this.urls(jobId, batch.indexes).then((downloads) => {
            for (const download of downloads)
                this.ready.push({ jobId, download });
            this.pump();
        }));
    }
    async urls(jobId, indexes) {
        const downloads = [];
        for (let start = 0; start < indexes.length && this.batchRoute; start += maxDownloadsPerRequest) {
            const page = indexes.slice(start, start + maxDownloadsPerRequest);
            try {
                const answer = await this.client.json(`/v1/jobs/${jobId}/downloads`, downloadsAnswer, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ indexes: page }) });
                downloads.push(...answer.downloads);
            }
            catch (error) {
                if (!(error instanceof ApiError && error.status === 404 && error.code === 'not_found'))
                    throw error;
                this.batchRoute = false;
            }
        }
        // A master of an older version: each result from its own route (the name from its Content-Disposition).
        const asked = new Set(downloads.map((download) => download.index));
        for (const index of indexes)
            if (!asked.has(index))
                downloads.push({ index, name: '', contentType: '', url: `/v1/jobs/${jobId}/images/${index}` });
        return downloads;
    }
    pump() {
        while (this.running < parallelFetches && this.ready.length > 0) {
            const { jobId, download } = this.ready.shift();
            this.running += 1;
            this.track(this.fetchOne(jobId, download).finally(() => {
                this.running -= 1;
                this.pump();
            }));
        }
    }
    async fetchOne(jobId, download) {
        const response = await fetchResult(this.client, download);
        await this.consume(jobId, download, response);
    }
    track(work) {
        const tracked = work
            .catch((error) => {
            this.failure ??= error;
        })
            .finally(() => this.pending.delete(tracked));
        this.pending.add(tracked);
    }
}
/**
 * GETs one result: a master path with the client's token, an absolute (presigned) URL without it, so
 * the token never leaves for storage.
 */
async function fetchResult(client, download) {
    if (download.url.startsWith('/'))
        return client.request(download.url);
    const response = await fetch(download.url).catch((error) => {
        throw new Error(`result ${download.index} (${download.name}): storage cannot be reached: ${error.cause?.message ?? error.message}`);
    });
    if (!response.ok)
        throw new Error(`result ${download.index} (${download.name}): storage answered ${await describeErrorResponse(response)}`);
    return response;
}
//# sourceMappingURL=result-fetcher.js.map