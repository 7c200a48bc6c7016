import { HttpError } from '../shared/http-error.js';
import { isTerminal } from './job-store.js';
/**
 * Events per job at most every 250 ms (4/s): a progress bar looks live at that rate, and a job whose
 * images finish by the hundred per second costs one view per quarter second, not one per image.
 */
const smallJobIntervalMs = 250;
/**
 * Jobs with more items than GET /v1/jobs/{id} lists (the contract: images for at most 1,000) stream
 * their view without `images` (GET /v1/jobs/{id}/items pages them), built at most once a second.
 */
const largeJobItems = 1_000;
const largeJobIntervalMs = 1_000;
/** An SSE comment this often keeps proxies (and the client's idle timers) from closing a quiet stream. */
const keepAliveMs = 15_000;
/** Seconds a client refused for too many streams waits before trying again (or polls meanwhile). */
const streamsRetryAfterSeconds = 5;
const frame = (event, data) => `event: ${event}\ndata: ${data}\n\n`;
/**
 * Live progress of jobs over Server-Sent Events (GET /v1/jobs/{id}/events), built to scale with the
 * number of subscribers: each job's view is built and encoded once per change and the same bytes are
 * written to every subscriber; changes are throttled per job; a subscriber that does not read is not
 * buffered for (it is sent the latest state once it reads again) and is dropped after the write timeout.
 */
export class ProgressStreams {
    store;
    limits;
    channels = new Map();
    total = 0;
    constructor(store, limits) {
        this.store = store;
        this.limits = limits;
        store.on('job', (jobId, images) => this.channels.get(jobId)?.changed(images));
        setInterval(() => {
            for (const channel of this.channels.values())
                channel.keepAlive();
        }, keepAliveMs).unref();
    }
    /** Streams open now (all jobs). */
    get open() {
        return this.total;
    }
    /** Answers the request with the job's event stream; 404 for an unknown job, 503 over the stream caps. */
    subscribe(jobId, res) {
        let channel = this.channels.get(jobId);
        // A job others already follow is not read again: the new subscriber gets the channel's current view.
        const job = channel ? undefined : this.store.getJob(jobId);
        if (!channel && !job)
            throw new HttpError(404, 'job_not_found', `no job with id "${jobId}"`);
        if (this.total >= this.limits.maxStreams) {
            throw new HttpError(503, 'too_many_streams', `the master serves ${this.limits.maxStreams} event streams already; poll GET /v1/jobs/${jobId} or retry later`, streamsRetryAfterSeconds);
        }
        if ((channel?.size ?? 0) >= this.limits.maxStreamsPerJob) {
            throw new HttpError(503, 'too_many_streams', `job ${jobId} has ${this.limits.maxStreamsPerJob} event streams already; poll GET /v1/jobs/${jobId} or retry later`, streamsRetryAfterSeconds);
        }
        // The stream's end ends the connection too: a finished stream's socket is not kept for reuse.
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'close' });
        if (!channel) {
            channel = new Channel(jobId, this.store, this.limits.streamWriteTimeoutMs, () => this.channels.delete(jobId));
            channel.rebuild(job);
            this.channels.set(jobId, channel);
        }
        this.total += 1;
        const subscriber = channel.add(res);
        res.on('close', () => {
            if (channel.remove(subscriber))
                this.total -= 1;
        });
    }
}
/** Everything subscribers of one job share: the last view, the changes since, the throttle. */
class Channel {
    jobId;
    store;
    writeTimeoutMs;
    onEmpty;
    subscribers = new Set();
    version = 0;
    progressText = '';
    timer;
    /** The last view built, and the images changed since ('all': anything may have); the next view patches it. */
    view;
    changedImages = 'all';
    /** Each image of the last view with its JSON: a patched view keeps unchanged images' objects, whose text is reused. */
    images = [];
    imageTexts = [];
    lastBuiltAt = 0;
    large = false;
    /** The job has reached a final state: every stream ends after its last event. */
    finished = false;
    constructor(jobId, store, writeTimeoutMs, onEmpty) {
        this.jobId = jobId;
        this.store = store;
        this.writeTimeoutMs = writeTimeoutMs;
        this.onEmpty = onEmpty;
    }
    get size() {
        return this.subscribers.size;
    }
    add(res) {
        const subscriber = { res, version: this.version, behind: false };
        this.subscribers.add(subscriber);
        this.write(subscriber, frame('progress', this.progressText));
        if (this.finished)
            this.end(subscriber);
        return subscriber;
    }
    /** Removes a closed subscriber; true the first time. */
    remove(subscriber) {
        if (!this.subscribers.delete(subscriber))
            return false;
        clearTimeout(subscriber.timer);
        if (this.subscribers.size === 0) {
            clearTimeout(this.timer);
            this.onEmpty();
        }
        return true;
    }
    /**
     * The job changed (only these images, when named): build the view now if the last one is old
     * enough, else once the interval is over.
     */
    changed(images) {
        if (!images)
            this.changedImages = 'all';
        else if (this.changedImages !== 'all')
            for (const index of images)
                this.changedImages.add(index);
        if (this.timer)
            return;
        const interval = this.large ? largeJobIntervalMs : smallJobIntervalMs;
        const wait = this.lastBuiltAt + interval - Date.now();
        if (wait <= 0)
            this.publish();
        else
            this.timer = setTimeout(() => this.publish(), wait);
    }
    keepAlive() {
        for (const subscriber of this.subscribers)
            if (!subscriber.behind)
                this.write(subscriber, ': keep-alive\n\n');
    }
    endAll() {
        for (const subscriber of this.subscribers)
            this.end(subscriber);
    }
    publish() {
        this.timer = undefined;
        const since = this.view && this.changedImages !== 'all' ? { view: this.view, changed: this.changedImages } : undefined;
        const job = this.store.getJob(this.jobId, since);
        if (!job) {
            this.finished = true; // purged: nothing more will come
            return this.endAll();
        }
        const before = this.progressText;
        this.rebuild(job);
        if (this.progressText !== before) {
            const frames = frame('progress', this.progressText);
            for (const subscriber of this.subscribers) {
                if (subscriber.behind)
                    continue; // it is sent the latest state once it drains
                subscriber.version = this.version;
                this.write(subscriber, frames);
            }
        }
        if (this.finished)
            this.endAll();
    }
    /** Takes in the job's current view as a new version. */
    rebuild(job) {
        this.view = job;
        this.changedImages = new Set();
        this.finished = isTerminal(job.status);
        this.lastBuiltAt = Date.now();
        this.version += 1;
        this.large = job.progress.total > largeJobItems;
        const { images, ...summary } = job;
        if (!images) {
            this.progressText = JSON.stringify(job);
            return;
        }
        // The same text as JSON.stringify(job) (images are the view's last field), encoding only images that changed.
        const texts = images.map((image, index) => (image === this.images[index] ? this.imageTexts[index] : JSON.stringify(image)));
        this.images = images;
        this.imageTexts = texts;
        this.progressText = `${JSON.stringify(summary).slice(0, -1)},"images":[${texts.join(',')}]}`;
    }
    write(subscriber, text) {
        if (subscriber.res.write(text))
            return;
        subscriber.behind = true;
        subscriber.timer = setTimeout(() => subscriber.res.destroy(), this.writeTimeoutMs);
        subscriber.res.once('drain', () => {
            clearTimeout(subscriber.timer);
            subscriber.behind = false;
            if (subscriber.version === this.version || subscriber.res.writableEnded)
                return;
            subscriber.version = this.version;
            this.write(subscriber, frame('progress', this.progressText));
        });
    }
    /** Ends a stream; one whose client does not read the last bytes is destroyed after the write timeout. */
    end(subscriber) {
        if (subscriber.res.writableEnded)
            return;
        if (subscriber.behind) {
            // What it missed is sent first: the final state must reach a client that catches up.
            subscriber.res.once('drain', () => subscriber.res.end());
        }
        else {
            subscriber.res.end();
        }
        clearTimeout(subscriber.timer);
        subscriber.timer = setTimeout(() => {
            if (!subscriber.res.writableFinished)
                subscriber.res.destroy();
        }, this.writeTimeoutMs);
        subscriber.timer.unref();
    }
}
//# sourceMappingURL=progress-stream.js.map