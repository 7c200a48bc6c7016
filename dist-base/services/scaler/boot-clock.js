/**
 * How long a new worker takes to be useful: from the tick that asked for it to its first heartbeat.
 * That is what the target backlog per worker follows: work that one worker finishes sooner than another
 * could start is not worth starting one for. It measures whatever the provider does (a local process
 * starting, an EC2 instance booting), so the same clock serves both.
 *
 * Requests are matched to newly seen workers oldest first; a request withdrawn by a later scale-in is
 * dropped newest first (the launch least likely to have started). Workers nobody asked for (those
 * already running when the master started) give no sample.
 */
/** Recent boots matter most (a warm host, a new image), but one slow boot only moves the figure halfway. */
const BOOT_SMOOTHING = 0.5;
export class BootClock {
    requestedAt = [];
    known = new Set();
    seconds;
    measured = false;
    constructor(configuredSeconds) {
        this.seconds = configuredSeconds;
    }
    /**
     * Called once per tick, after the decision: `desired` workers are wanted, `workers` heartbeat.
     * New workers settle the oldest requests; then outstanding requests are topped up or withdrawn.
     */
    update(desired, workers, now) {
        const present = new Set(workers.map((worker) => worker.id));
        for (const id of this.known)
            if (!present.has(id))
                this.known.delete(id);
        for (const worker of workers) {
            if (this.known.has(worker.id))
                continue;
            this.known.add(worker.id);
            const requested = this.requestedAt.shift();
            if (requested === undefined)
                continue;
            const sample = Math.max(0, Math.min(now, worker.lastHeartbeat ?? now) - requested) / 1000;
            this.seconds = this.measured ? this.seconds + BOOT_SMOOTHING * (sample - this.seconds) : sample;
            this.measured = true;
        }
        const outstanding = Math.max(0, desired - workers.length);
        while (this.requestedAt.length > outstanding)
            this.requestedAt.pop();
        while (this.requestedAt.length < outstanding)
            this.requestedAt.push(now);
    }
    estimate() {
        return { seconds: this.seconds, source: this.measured ? 'measured' : 'configured' };
    }
}
//# sourceMappingURL=boot-clock.js.map