import { describe, expect, it } from 'vitest';
import { jobView } from '../../services/protocol/api.js';
import { formatJob } from '../../services/cli/views.js';

/* `dips status` output from a job view as GET /v1/jobs/{id} answers it (checked by the protocol schema). */

describe('formatJob', () => {
  it('lists each image of a job whose view holds them, under a headline of what was processed', () => {
    const job = jobView.parse({
      id: 'j1',
      status: 'partial',
      progress: { done: 1, failed: 1, total: 3 },
      createdAt: '2026-12-02T22:00:00.000Z',
      images: [
        { index: 0, name: 'a.jpg', status: 'succeeded', width: 640, height: 480 },
        { index: 1, name: 'b.jpg', status: 'failed', error: 'b.jpg: cannot decode' },
        { index: 2, name: 'c.jpg', status: 'canceled' },
      ],
    });
    const lines = formatJob(job).split('\n');
    expect(lines[0]).toBe('job j1  partial  2 of 3 images processed (1 failed)');
    expect(lines.slice(2).map((line) => line.trim().split(/\s{2,}/))).toEqual([
      ['#', 'name', 'status', 'size', 'detail'],
      ['0', 'a.jpg', 'succeeded', '640x480'],
      ['1', 'b.jpg', 'failed', '—', 'b.jpg: cannot decode'],
      ['2', 'c.jpg', 'canceled', '—'],
    ]);
  });

  it('gives a job too large for its view to list images its counts, and where its items are', () => {
    const job = jobView.parse({ id: 'big', status: 'running', kind: 'batch', progress: { done: 40_000, failed: 2, total: 100_000 }, createdAt: '2026-12-02T22:00:00.000Z' });
    expect(formatJob(job, 'starting workers (0 of 2 ready)')).toBe(
      ['job big  running  40002 of 100000 images processed (2 failed)', 'waiting: starting workers (0 of 2 ready)', '', 'its items are listed page by page: GET /v1/jobs/big/items'].join('\n'),
    );
  });
});
