import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server } from '../../bench/s3-server.js';
import { inputKey, jobPrefix, outputKey } from '../../services/master/keys.js';
import { LocalStorage } from '../../services/master/local-storage.js';
import { Master } from '../../services/master/master.js';
import { OrphanedJobFiles } from '../../services/master/orphaned-job-files.js';
import { S3Storage } from '../../services/master/s3-storage.js';
import { loadMasterConfig } from '../../services/shared/config.js';
import { createLogger } from '../../services/shared/logger.js';

/* The sweep on a real data directory. A folder is what a crash leaves: inputs stored, the job never committed. */

const logger = createLogger('test', 'silent');
let dataDirs: string;
beforeAll(async () => {
  dataDirs = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-orphans-'));
});
afterAll(() => fs.rm(dataDirs, { recursive: true, force: true }));

const makeStorage = () => LocalStorage.inDataDir(path.join(dataDirs, randomUUID()));

/** A job's folder as a request leaves it: two inputs and, for a job that ran, an output. */
async function storeJobFiles(storage: LocalStorage, jobId: string, withOutput = false): Promise<void> {
  await storage.putBuffer(inputKey(jobId, 0), Buffer.from('first input'));
  await storage.putBuffer(inputKey(jobId, 1), Buffer.from('second input'));
  if (withOutput) await storage.putBuffer(outputKey(jobId, 0), Buffer.from('a result'));
}
const filesOf = async (storage: LocalStorage, jobId: string) => [...(await storage.listObjects(`${jobPrefix(jobId)}/in`)).keys()].length;

describe('files of no job', () => {
  it('lists the job folders under jobs/, and none where nothing was stored', async () => {
    const storage = makeStorage();
    await expect(storage.listFolders('jobs')).resolves.toEqual([]);
    const [first, second] = [randomUUID(), randomUUID()];
    await storeJobFiles(storage, first);
    await storeJobFiles(storage, second, true);
    expect((await storage.listFolders('jobs')).sort()).toEqual([first, second].sort());
    expect((await storage.listFolders(jobPrefix(second))).sort()).toEqual(['in', 'out']);
  });

  it('deletes a folder only when a second pass still finds it without a job; a job\'s own files stay', async () => {
    const storage = makeStorage();
    const [orphan, kept] = [randomUUID(), randomUUID()];
    await storeJobFiles(storage, orphan);
    await storeJobFiles(storage, kept, true);
    const sweeper = new OrphanedJobFiles(storage, (jobId) => jobId === kept, logger);

    expect(await sweeper.sweep()).toBe(0);
    expect(await filesOf(storage, orphan)).toBe(2);
    expect(await sweeper.sweep()).toBe(1);
    expect(await filesOf(storage, orphan)).toBe(0);
    expect(await storage.listFolders('jobs')).toEqual([kept]);
    expect((await storage.getBuffer(outputKey(kept, 0))).toString()).toBe('a result');
    expect(await sweeper.sweep()).toBe(0);
  });

  it('keeps a folder whose job was committed between two passes, and one first seen by the later pass', async () => {
    const storage = makeStorage();
    const [committedLate, storedLate] = [randomUUID(), randomUUID()];
    const jobs = new Set<string>();
    const sweeper = new OrphanedJobFiles(storage, (jobId) => jobs.has(jobId), logger);
    await storeJobFiles(storage, committedLate);
    expect(await sweeper.sweep()).toBe(0);
    jobs.add(committedLate);
    await storeJobFiles(storage, storedLate);
    expect(await sweeper.sweep()).toBe(0);
    expect((await storage.listFolders('jobs')).sort()).toEqual([committedLate, storedLate].sort());
    expect(await sweeper.sweep()).toBe(1);
    expect(await storage.listFolders('jobs')).toEqual([committedLate]);
  });
});

describe('a master on S3', () => {
  it('does not sweep its bucket prefix: another master may share it, and the bucket lifecycle expires job data', async () => {
    const s3 = await startS3Server();
    const dataDir = path.join(dataDirs, randomUUID());
    const storage = new S3Storage(s3.client, s3.bucket, 'shared/');
    // Another master's job: files under the shared prefix that this master's store knows nothing of.
    const otherJob = randomUUID();
    await storage.putBuffer(inputKey(otherJob, 0), Buffer.from('their input'));
    const master = await Master.create(loadMasterConfig({ dataDir }, {}), logger, { storage });
    try {
      expect(master.orphanedFiles).toBeUndefined();
      expect((await storage.getBuffer(inputKey(otherJob, 0))).toString()).toBe('their input');
    } finally {
      master.close();
      await s3.close();
    }
  });
});
