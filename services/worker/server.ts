import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { once } from 'node:events';
import { PIXEL_MEMORY_SHARE } from '../image-core/pixel-memory.js';
import { authHeaders } from '../shared/auth.js';
import { loadWorkerConfig, type WorkerOptions } from '../shared/config.js';
import { filesId } from '../shared/files-id.js';
import { describeApiError } from '../protocol/errors.js';
import { keepAliveRequest, readErrorAnswer } from '../shared/http-client.js';
import type { Heartbeat } from '../protocol/tasks.js';
import { createHttpServer, workerServerLimits } from '../shared/http-server.js';
import { createLogger } from '../shared/logger.js';
import { createWorkerApp, type WorkerState } from './app.js';
import { InputBuffers } from './input-buffers.js';
import { MemoryGate } from './memory-gate.js';
import { Slots } from './slots.js';

export interface RunningWorker {
  id: string;
  url: string;
  /** Stops taking work, finishes what it holds, leaves the master, closes. */
  drain(): Promise<void>;
}

/**
 * Starts a worker: listens, then registers with the master by heartbeating (the master learns the
 * address to reach it from the heartbeat).
 */
export async function startWorker(options: WorkerOptions = {}): Promise<RunningWorker> {
  const config = loadWorkerConfig(options);
  const logger = createLogger('dips-worker');
  // V8's collector is exposed by workerNodeArgs (every worker process starts with them: node-args.ts).
  const collect = globalThis.gc;
  const memory = new MemoryGate(Math.floor(config.workerMemoryBytes * PIXEL_MEMORY_SHARE), collect ? () => collect() : undefined);
  const state: WorkerState = { slots: new Slots(config.slots), memory, draining: false, leases: new Set() };
  // The workers' own secret; without one, the client token (one secret for the whole cluster).
  const credential = config.workerToken ?? config.token;
  // libuv sizes its pool before any JavaScript runs, so only the environment that starts us can fix it.
  const threadPool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  if (threadPool < config.slots) {
    logger.warn({ slots: config.slots, UV_THREADPOOL_SIZE: threadPool }, 'libuv thread pool is smaller than the task slots: start the worker with UV_THREADPOOL_SIZE >= DIPS_WORKER_SLOTS');
  }
  const masterUrl = config.masterUrl.replace(/\/+$/, '');
  const headers = { ...authHeaders(credential), 'content-type': 'application/json' };
  // One kept input buffer per slot: each running task reads its input into one (input-buffers.ts).
  const buffers = new InputBuffers(config.slots);
  const app = createWorkerApp({ ...config, credential }, { masterUrl, headers: authHeaders(credential), buffers }, state, logger);
  const server = createHttpServer(app, workerServerLimits).listen(config.port, config.host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const url = config.advertisedAddress ?? `http://${config.host}:${port}`;
  const id = `${os.hostname()}-${port}-${randomBytes(3).toString('hex')}`;
  const files = config.fileAccess === 'auto' ? { filesId: filesId() } : {};
  let lastWarning = '';

  const heartbeat = async (): Promise<void> => {
    try {
      // node:http rather than fetch: a third of the CPU per request, and a worker sends one every heartbeatMs.
      const response = await keepAliveRequest(`${masterUrl}/v1/workers/${encodeURIComponent(id)}`, {
        method: 'PUT',
        headers,
        body: JSON.stringify({ address: url, slots: config.slots, draining: state.draining, leases: [...state.leases], ...files } satisfies Heartbeat),
        timeout: { ms: config.heartbeatMs * 2, error: () => new Error(`no answer within ${config.heartbeatMs * 2} ms`) },
      });
      const status = response.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        throw new Error(describeApiError(await readErrorAnswer(response)));
      }
      response.resume();
      if (lastWarning) logger.info({ master: masterUrl }, 'master reachable again');
      lastWarning = '';
    } catch (error) {
      const warning = (error as Error).message;
      // One line per distinct problem: a master that is down for a while should not flood the log.
      if (warning !== lastWarning) logger.warn({ master: masterUrl, reason: warning }, 'heartbeat failed');
      lastWarning = warning;
    }
  };
  await heartbeat();
  const timer = setInterval(() => void heartbeat(), config.heartbeatMs);
  logger.info({ id, url, slots: config.slots, master: masterUrl }, 'worker listening');

  let draining: Promise<void> | undefined;
  const drain = () => {
    draining ??= (async () => {
      state.draining = true;
      logger.info({ id, running: state.slots.busy }, 'draining');
      await heartbeat();
      await state.slots.idle();
      clearInterval(timer);
      await fetch(`${masterUrl}/v1/workers/${encodeURIComponent(id)}`, { method: 'DELETE', headers, signal: AbortSignal.timeout(2_000) }).catch(
        () => undefined,
      );
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      logger.info({ id }, 'worker stopped');
    })();
    return draining;
  };
  return { id, url, drain };
}
