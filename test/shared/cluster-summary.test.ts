import { describe, expect, it } from 'vitest';
import type { ScalerStatus } from '../../services/protocol/api.js';
import { summarizeCluster } from '../../services/shared/cluster-summary.js';

const worker = (state: string) => ({ state });
/** The scaler's state as /v1/cluster reports it, with this backlog in worker-seconds (all from calibrated defaults). */
const scaler = (workerSeconds: number): ScalerStatus => ({
  provider: 'local',
  min: 0,
  max: 4,
  desiredCapacity: 0,
  actualCapacity: 0,
  backlog: { workerSeconds, learnedWorkerSeconds: 0, defaultWorkerSeconds: workerSeconds, units: workerSeconds > 0 ? 1 : 0, pixels: 0 },
  target: { secondsPerWorker: 6, source: 'configured boot' },
  lastDecision: null,
  lastChange: null,
  lastError: null,
  silentWorkers: [],
});

describe('summarizeCluster', () => {
  it('says how many workers are ready, how much work waits, and what the scaler is changing', () => {
    expect(summarizeCluster({ workers: [worker('ready'), worker('ready'), worker('ready')], queueDepth: 12, desiredCapacity: 4, scaler: scaler(40.4) })).toEqual({
      summary: '3 workers, 40 s of work queued, adding 1',
    });
    expect(summarizeCluster({ workers: [worker('ready'), worker('ready')], queueDepth: 0, desiredCapacity: 1, scaler: scaler(0) })).toEqual({ summary: '2 workers, nothing queued, removing 1' });
    // Without a scaler, the queue is counted in units and nothing is being added.
    expect(summarizeCluster({ workers: [worker('ready'), worker('draining')], queueDepth: 5, desiredCapacity: 2 })).toEqual({ summary: '1 worker, 5 units queued' });
  });

  it('a pool scaling from zero is "starting workers"; no worker and no scaler means nothing can run', () => {
    expect(summarizeCluster({ workers: [], queueDepth: 1, desiredCapacity: 2, scaler: scaler(3) })).toEqual({
      summary: '0 workers, 3 s of work queued, adding 2',
      waiting: 'starting workers (0 of 2 ready)',
    });
    expect(summarizeCluster({ workers: [worker('dead')], queueDepth: 1, desiredCapacity: 0 }).waiting).toMatch(/^no worker is registered with the master/);
    expect(summarizeCluster({ workers: [worker('draining')], queueDepth: 1, desiredCapacity: 1 }).waiting).toMatch(/^no worker is registered/);
    // A scaler still starting (AWS group not found yet) has no backlog figure: the queue is counted in units.
    expect(summarizeCluster({ workers: [], queueDepth: 2, desiredCapacity: 0, scaler: { state: 'starting', attempt: 2, attempts: 12 } }).summary).toBe('0 workers, 2 units queued');
  });
});
