import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corpus, getJob, postJob, waitUntil } from '../helpers/api.js';
import { killAll, startDips, type DipsProcess } from '../helpers/processes.js';
import { getBatchJob, postBatch, servedSchema, submitBatch, tempDir, writeImages } from './support.js';
import { parseResponse } from '../../services/protocol/api.js';
import { batchAccepted, jobsPage } from '../../services/protocol/batch.js';

// A master without workers: whatever it accepts stays queued, so the bounds are what answers.
let master: DipsProcess;
let sources: string;

beforeAll(async () => {
  const tmp = await tempDir('batch-admission');
  sources = path.join(tmp, 'in');
  await writeImages(sources, 6);
  master = await startDips(['master', '--port', '0', '--data-dir', path.join(tmp, 'data')], {
    DIPS_SOURCES: `file://${sources}`,
    DIPS_MAX_QUEUED_IMAGES: '2',
    DIPS_MAX_QUEUED_ITEMS: '5',
  });
}, 60_000);

afterAll(killAll);

describe('queue bounds', () => {
  it('batch items do not count against DIPS_MAX_QUEUED_IMAGES; they have their own DIPS_MAX_QUEUED_ITEMS', async () => {
    const body = { pipeline: [], inputs: { prefix: `file://${sources}` } };
    const { id } = await submitBatch(master.url, body);
    await waitUntil(() => getBatchJob(master.url, id), (job) => job.progress.total === 6, 10_000, 'the listing');
    // The same body again while the job is unfinished: its id, `resumed`, as the served schema has it.
    const again = await postBatch(master.url, body);
    expect(again.status).toBe(202);
    const resumed: unknown = await again.json();
    expect(resumed).toMatchObject({ id, resumed: true });
    const accepted = await servedSchema(master.url, '/v1/jobs', 'post', '202');
    expect(() => accepted.parse(resumed)).not.toThrow();
    expect(() => accepted.parse({ id, status: 'queued', resumed: 'yes' })).toThrow();
    // GET /v1/jobs says each job's kind, as its served schema requires.
    const jobs = await parseResponse(jobsPage, await fetch(`${master.url}/v1/jobs`));
    expect(jobs.jobs.find((job) => job.id === id)?.kind).toBe('batch');
    const listed = await servedSchema(master.url, '/v1/jobs', 'get', '200');
    expect(() => listed.parse(jobs)).not.toThrow();
    expect(() => listed.parse({ jobs: jobs.jobs.map(({ kind: _kind, ...rest }) => rest) })).toThrow();

    // 6 batch items queued, more than DIPS_MAX_QUEUED_IMAGES=2: uploads are still admitted, up to their own bound.
    const upload = async () => postJob(master.url, [corpus('aqua.jpg')], { pipeline: '[]' });
    const first = await upload();
    expect(first.status).toBe(202);
    expect((await getJob(master.url, (await parseResponse(batchAccepted, first)).id)).status).toBe('queued');
    expect((await upload()).status).toBe(202);
    const third = await upload();
    expect(third.status).toBe(429);
    expect(await third.text()).toMatch(/2 images/);

    // A further batch job is refused while 6 >= DIPS_MAX_QUEUED_ITEMS=5 items wait, saying which limit.
    const refused = await postBatch(master.url, { pipeline: [{ op: 'invert' }], inputs: { prefix: `file://${sources}` } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('30');
    expect(await refused.text()).toMatch(/6 unfinished batch items.*DIPS_MAX_QUEUED_ITEMS=5/);
    // Canceling the job frees its places.
    expect((await fetch(`${master.url}/v1/jobs/${id}`, { method: 'DELETE' })).status).toBeLessThan(300);
    expect((await postBatch(master.url, { pipeline: [{ op: 'invert' }], inputs: { prefix: `file://${sources}` } })).status).toBe(202);
  });
});
