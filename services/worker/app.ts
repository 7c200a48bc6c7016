import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { requireToken } from '../shared/auth.js';
import { errorHandler, HttpError, notFound } from '../shared/http-error.js';
import type { Logger } from '../shared/logger.js';
import type { WorkerConfig } from '../shared/config.js';
import { maxTaskBatchBytes, taskBatch, type TaskResult, type WorkerHealth } from '../protocol/tasks.js';
import type { Reach } from './locations.js';
import type { MemoryGate } from './memory-gate.js';
import { asApiError, runTask } from './run-task.js';
import type { Slots } from './slots.js';

export interface WorkerState {
  slots: Slots;
  /** PIXEL_MEMORY_SHARE of DIPS_WORKER_MEMORY_BYTES, lent to whole stages while they run. */
  memory: MemoryGate;
  /** Set on SIGTERM: new work is refused with 503 so the master sends it elsewhere. */
  draining: boolean;
  /** Leases of the tasks accepted and not yet answered: every heartbeat lists them, renewing them. */
  leases: Set<string>;
}

/**
 * The worker's HTTP API: task batches from the master (behind the worker credential) and a health
 * check. A batch is answered with one NDJSON line per task as each finishes.
 */
export function createWorkerApp(
  config: Pick<WorkerConfig, 'maxPixels' | 'maxTaskBytes' | 'workerMemoryBytes'> & { credential?: string | undefined },
  reach: Omit<Reach, 'maxBytes' | 'signal'>,
  state: WorkerState,
  logger: Logger,
) {
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => {
    const { memory } = state;
    res.json({
      status: state.draining ? 'draining' : 'ok',
      running: state.slots.busy,
      waiting: state.slots.queued,
      slots: state.slots.size,
      memory: { capacityBytes: memory.capacity, heldBytes: memory.heldBytes, waiting: memory.queued },
    } satisfies WorkerHealth);
  });

  const tasks = express.Router();
  tasks.use(requireToken(config.credential, 'DIPS_WORKER_TOKEN'));
  tasks.use((_req, res, next) => {
    if (state.draining) return next(new HttpError(503, 'draining', 'worker is shutting down', 1));
    res.on('close', state.slots.accept());
    next();
  });

  tasks.post('/tasks', express.json({ limit: maxTaskBatchBytes }), async (req, res) => {
    const parsed = taskBatch.safeParse(req.body);
    if (!parsed.success) throw new HttpError(400, 'bad_task', `task batch: ${z.prettifyError(parsed.error)}`);
    const signal = abortOnDisconnect(req, res);
    res.status(200).type('application/x-ndjson');
    res.flushHeaders();
    const answer = (result: TaskResult) => {
      if (!res.writableEnded) res.write(`${JSON.stringify(result)}\n`);
    };
    await Promise.all(
      parsed.data.tasks.map(async (task) => {
        state.leases.add(task.lease);
        try {
          const result = await state.slots.use(() =>
            signal.aborted ? Promise.reject(signal.reason) : runTask(task, { ...reach, maxBytes: config.maxTaskBytes, signal }, { maxPixels: config.maxPixels, maxDecodeBytes: config.workerMemoryBytes, memory: state.memory }),
          );
          logger.debug({ unit: task.unit, lease: task.lease, ms: result.processingMs, ok: result.ok }, 'task done');
          if (!result.ok) logger.info({ unit: task.unit, error: result.error }, 'task failed');
          answer(result);
        } catch (error) {
          answer({ ok: false, lease: task.lease, processingMs: 0, error: { ...pick(asApiError(error)) } });
        } finally {
          state.leases.delete(task.lease);
        }
      }),
    );
    res.end();
  });

  app.use('/v1', tasks);
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}

const pick = ({ status, code, message }: { status: number; code: string; message: string }) => ({ status, code, message });

/** Aborts the batch's tasks when the master gives up on it (connection closed before we answered). */
function abortOnDisconnect(req: Request, res: Response): AbortSignal {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort(new Error(`batch abandoned by the master (${req.socket.remoteAddress})`));
  });
  return controller.signal;
}
