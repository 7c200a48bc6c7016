import { describe, expect, it } from 'vitest';
import { summarizeCluster } from '../../services/shared/cluster-summary.js';

const worker = (state: string) => ({ state });
const scaler = (seconds: number) => ({ backlog: { seconds } });

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
  });
});
