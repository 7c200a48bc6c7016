import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
/** The master's Prometheus metrics, on a registry of its own (several masters can share a process in tests). */
export function createMetrics() {
    const registry = new Registry();
    // The event-loop lag histogram samples on a libuv timer: at prom-client's default 10 ms it woke an idle
    // master 100 times a second (two thirds of its idle CPU); 100 ms still gives a scrape hundreds of samples.
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
    return {
        registry,
        queueDepth: new Gauge({ name: 'dips_queue_depth', help: 'Units of work (whole images or tiles) waiting for a worker', registers: [registry] }),
        inflight: new Gauge({ name: 'dips_inflight', help: 'Units of work leased to workers', registers: [registry] }),
        pendingImages: new Gauge({ name: 'dips_pending_images', help: 'Images accepted and not finished', registers: [registry] }),
        workers: new Gauge({ name: 'dips_workers', help: 'Workers by state', labelNames: ['state'], registers: [registry] }),
        unitsCompleted: new Counter({
            name: 'dips_units_completed_total',
            help: 'Units of work completed by workers (rate() gives tiles/s)',
            labelNames: ['kind'],
            registers: [registry],
        }),
        retries: new Counter({ name: 'dips_retries_total', help: 'Units re-queued after a failed attempt', labelNames: ['reason'], registers: [registry] }),
        unitBytes: new Counter({
            name: 'dips_unit_bytes_total',
            help: 'Bytes of task bodies sent to workers and results received, by unit kind',
            labelNames: ['kind', 'direction'],
            registers: [registry],
        }),
        unitRoundTrip: new Histogram({
            name: 'dips_unit_roundtrip_seconds',
            help: 'From sending a unit to a worker to holding its whole result (transfer + queueing + work)',
            labelNames: ['kind'],
            buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
            registers: [registry],
        }),
        tasksPerRequest: new Histogram({
            name: 'dips_tasks_per_request',
            help: 'Tasks one request to a worker carries (the dispatcher batches what a worker has room for)',
            buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
            registers: [registry],
        }),
        lateResults: new Counter({ name: 'dips_late_results_total', help: 'Results that arrived after their lease expired (ignored)', registers: [registry] }),
        imagesFinished: new Counter({ name: 'dips_images_total', help: 'Images finished, by outcome', labelNames: ['status'], registers: [registry] }),
        jobLatency: new Histogram({
            name: 'dips_job_duration_seconds',
            help: 'Time from job acceptance to its last image finishing',
            buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
            registers: [registry],
        }),
    };
}
//# sourceMappingURL=metrics.js.map