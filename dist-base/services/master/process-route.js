import { randomUUID } from 'node:crypto';
import express from 'express';
import { HttpError } from '../shared/http-error.js';
import { sendStream } from '../shared/http-server.js';
import { summarizeCluster } from '../shared/cluster-summary.js';
import { contentTypeFor } from '../image-core/encode.js';
import { isTerminal } from './job-store.js';
import { inputKey, outputKey } from './keys.js';
import { validateSubmission } from './submission.js';
import { discard, receiveUpload } from './upload.js';
/** Seconds a client should wait before trying again when no worker can take the image. */
const noWorkerRetryAfter = 10;
/**
 * POST /v1/process: one image (multipart part `image`) and a `pipeline` in, the processed image out in
 * the same response. It is a one-image job underneath (same limits, validation, workers and tiling;
 * its id is in X-DIPS-Job, so GET /v1/jobs/{id} shows it too). A client that hangs up cancels it.
 */
export function processRouter(master) {
    const { config, store, storage, runner } = master;
    const router = express.Router();
    router.post('/process', async (req, res) => {
        const { waiting } = summarizeCluster(master.cluster());
        // Scaling from zero is worth waiting for; a master with no worker and no scaler would hang forever.
        if (waiting && !master.scaler) {
            req.resume();
            throw new HttpError(503, 'no_workers', `nothing can process the image now: ${waiting.replace('<master URL>', 'this master')}`, noWorkerRetryAfter);
        }
        if (store.pendingImages().uploads >= config.maxQueuedImages) {
            req.resume();
            throw new HttpError(429, 'saturated', `the queue holds ${config.maxQueuedImages} images; retry later`, 5);
        }
        const upload = await receiveUpload(req, master.spoolDir, { ...config, maxFiles: 1 }, 'image');
        const id = randomUUID();
        try {
            if (upload.files.length === 0)
                throw new HttpError(400, 'no_image', 'the request has no file part named "image"');
            if (upload.fields.webhook !== undefined)
                throw new HttpError(400, 'unexpected_field', 'POST /v1/process answers synchronously: "webhook" is for POST /v1/jobs');
            const job = await validateSubmission(config, master.presets, upload.files, upload.fields);
            await storage.putFile(inputKey(id, 0), upload.files[0].path);
            store.createJob({ id, ...job });
            runner.fill();
            master.scaler?.wake?.();
        }
        finally {
            await discard(upload.files);
        }
        const abandoned = () => {
            if (!res.writableEnded && store.cancelJob(id))
                runner.cancelJob(id);
        };
        res.on('close', abandoned);
        await finished(master, id);
        const image = store.image(id, 0);
        if (image.status !== 'succeeded') {
            throw new HttpError(422, 'processing_failed', image.error ?? `the image was ${image.status}`);
        }
        const stream = await storage.getStream(outputKey(id, 0));
        res.type(contentTypeFor(image.out_format)).set('X-DIPS-Job', id);
        // Header values must be ASCII: other characters of the decoded texts travel as JSON \u escapes.
        if (image.qr)
            res.set('X-DIPS-QR', image.qr.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
        await sendStream(stream, res);
    });
    return router;
}
/** Resolves once the job is finished (any outcome). */
function finished(master, id) {
    return new Promise((resolve) => {
        const check = (changed) => {
            if (changed !== id)
                return;
            const job = master.store.getJob(id);
            if (job && !isTerminal(job.status))
                return;
            master.store.off('job', check);
            resolve();
        };
        master.store.on('job', check);
        check(id);
    });
}
//# sourceMappingURL=process-route.js.map