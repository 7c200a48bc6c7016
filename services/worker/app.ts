import express, { type Request, type Response } from 'express';
import { requireToken } from '../shared/auth.js';
import { errorHandler, HttpError, notFound } from '../shared/http-error.js';
import type { Logger } from '../shared/logger.js';
import type { WorkerConfig } from '../shared/config.js';
import { decodeWholeTask, encodeResultHeader, WholeTaskError } from '../shared/whole-task.js';
import { InputError } from '../image-core/decode.js';
import { processImage } from '../image-core/process-image.js';
import { parsePipeline, PipelineError } from '../image-core/pipeline.js';
import { executeTileTask } from '../image-core/execute-tile.js';
import { decodeTileTask, encodeTileResult, TileWireError } from '../image-core/tile-task.js';
import type { Slots } from './slots.js';
import { variantsRoute } from './variants-route.js';

export interface WorkerState {
  slots: Slots;
  /** Set on SIGTERM: new work is refused with 503 so the master sends it elsewhere. */
  draining: boolean;
}

/** The worker's HTTP API: tasks from the master (token-protected) and a health check. */
export function createWorkerApp(config: Pick<WorkerConfig, 'token' | 'maxPixels' | 'maxTaskBytes'>, state: WorkerState, logger: Logger) {
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => {
    res.json({ status: state.draining ? 'draining' : 'ok', running: state.slots.busy, waiting: state.slots.queued, slots: state.slots.size });
  });

  const tasks = express.Router();
  tasks.use(requireToken(config.token));
  tasks.use((_req, res, next) => {
    if (state.draining) return next(new HttpError(503, 'draining', 'worker is shutting down', 1));
    res.on('close', state.slots.accept());
    next();
  });
  tasks.use(express.raw({ type: () => true, limit: config.maxTaskBytes }));

  tasks.post('/tasks/whole', async (req, res) => {
    const { header, image } = decodeWholeTask(bodyOf(req));
    const steps = parsePipeline(header.pipeline);
    const signal = abortOnDisconnect(req, res);
    const started = performance.now();
    const result = await state.slots.use(() =>
      processImage(
        image,
        steps,
        { ...(header.format ? { format: header.format } : {}), ...(header.quality ? { quality: header.quality } : {}) },
        { maxPixels: config.maxPixels, name: header.name, signal },
      ),
    );
    logger.info({ unit: req.get('x-dips-unit'), lease: req.get('x-dips-lease'), ms: Math.round(performance.now() - started) }, 'whole image done');
    res
      .set('x-dips-result', encodeResultHeader({ width: result.width, height: result.height, format: result.format, ...(result.annotations.qr ? { qr: result.annotations.qr } : {}) }))
      .type('application/octet-stream')
      .send(result.data);
  });

  tasks.post('/tasks/tile', async (req, res) => {
    const task = decodeTileTask(bodyOf(req));
    const started = performance.now();
    const result = await state.slots.use(() => executeTileTask(task));
    logger.debug({ unit: req.get('x-dips-unit'), lease: req.get('x-dips-lease'), ms: Math.round(performance.now() - started) }, 'tile done');
    res.type('application/octet-stream').send(Buffer.concat(encodeTileResult(result)));
  });

  tasks.post('/tasks/variants', variantsRoute(config, state.slots));

  app.use('/v1', tasks);
  app.use(notFound);
  app.use((error: unknown, _req: Request, _res: Response, next: (error?: unknown) => void) => {
    // Problems with the image or pipeline are permanent (422): the master must not retry them.
    if (error instanceof InputError) return next(new HttpError(422, error.code, error.message));
    if (error instanceof PipelineError) return next(new HttpError(422, 'bad_pipeline', error.message));
    if (error instanceof TileWireError || error instanceof WholeTaskError) return next(new HttpError(400, 'bad_task', error.message));
    next(error);
  });
  app.use(errorHandler(logger));
  return app;
}

function bodyOf(req: Request): Buffer {
  if (!Buffer.isBuffer(req.body)) throw new HttpError(400, 'no_body', 'task body is missing');
  return req.body;
}

/** Aborts the task when the master gives up on it (connection closed before we answered). */
function abortOnDisconnect(req: Request, res: Response): AbortSignal {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort(new Error(`task ${req.get('x-dips-unit')} abandoned by the master`));
  });
  return controller.signal;
}
