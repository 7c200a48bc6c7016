import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MasterClient } from '../../services/cli/client.js';
import { ResultFetcher } from '../../services/cli/result-fetcher.js';
import { errorHandler, notFound } from '../../services/shared/http-error.js';
import { createLogger } from '../../services/shared/logger.js';

/* The CLI's result fetcher against a master of an older version: a real express app with the result
   route and without POST /v1/jobs/{id}/downloads, which it answers as the master answers any route it
   does not have (404 not_found). */

let server: Server;
let url: string;
/** The requests the old master saw, as "METHOD path". */
const seen: string[] = [];
const resultBytes = (job: string, index: string) => Buffer.from(`result ${index} of ${job}`);

beforeAll(async () => {
  const app = express();
  app.use((req, _res, next) => {
    seen.push(`${req.method} ${req.path}`);
    next();
  });
  app.get('/v1/jobs/:id/images/:index', (req, res) => {
    res.attachment(`photo-${req.params.index}.png`).type('image/png').send(resultBytes(req.params.id, req.params.index));
  });
  app.use(notFound);
  app.use(errorHandler(createLogger('test', 'silent')));
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

describe('fetching results from a master without the downloads route', () => {
  it('asks the batch route once, then fetches every result from its own route, with its bytes and name', async () => {
    const fetched: Array<{ job: string; index: number; disposition: string | null; bytes: string }> = [];
    const fetcher = new ResultFetcher(new MasterClient(url, {}), async (job, download, response) => {
      fetched.push({ job, index: download.index, disposition: response.headers.get('content-disposition'), bytes: Buffer.from(await response.arrayBuffer()).toString() });
    });
    fetcher.add('job-a', 0);
    fetcher.add('job-a', 1);
    fetcher.flush('job-a');
    await fetcher.finished();
    fetcher.add('job-b', 0);
    fetcher.flush('job-b');
    await fetcher.finished();

    expect(fetched.sort((a, b) => `${a.job}${a.index}`.localeCompare(`${b.job}${b.index}`))).toEqual([
      { job: 'job-a', index: 0, disposition: 'attachment; filename=photo-0.png', bytes: 'result 0 of job-a' },
      { job: 'job-a', index: 1, disposition: 'attachment; filename=photo-1.png', bytes: 'result 1 of job-a' },
      { job: 'job-b', index: 0, disposition: 'attachment; filename=photo-0.png', bytes: 'result 0 of job-b' },
    ]);
    // The route's absence is learned once: job-b's result is asked for at its own route straight away.
    expect(seen.filter((request) => request.startsWith('POST'))).toEqual(['POST /v1/jobs/job-a/downloads']);
    expect(seen.filter((request) => request.startsWith('GET')).sort()).toEqual(['GET /v1/jobs/job-a/images/0', 'GET /v1/jobs/job-a/images/1', 'GET /v1/jobs/job-b/images/0']);
  });
});
