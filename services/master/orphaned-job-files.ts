import type { Logger } from '../shared/logger.js';
import { jobPrefix, jobsFolder } from './keys.js';
import type { Storage } from './storage.js';

/**
 * How often the job folders in storage are compared with the jobs the store holds. Listing costs one
 * request per 1,000 jobs on S3 (a readdir on local disk), so hourly is cheap; and a folder is deleted
 * only when two passes an hour apart both found it without a job, which no job being created is for
 * that long (its inputs are stored, then its row committed, within the request that sent them).
 */
export const orphanSweepMs = 3600_000;

/**
 * Job folders that no job owns: a master killed after storing a job's inputs but before committing the
 * job (the request was never answered 202), or a worker's late output for a job purged while its task
 * ran. The first pass only notes such folders; a later pass deletes those still without a job.
 */
export class OrphanedJobFiles {
  /** Folders the last pass found without a job. */
  private suspects = new Set<string>();

  constructor(
    private readonly storage: Storage,
    private readonly jobExists: (jobId: string) => boolean,
    private readonly logger: Logger,
  ) {}

  /** One pass; resolves to the number of folders deleted. */
  async sweep(): Promise<number> {
    const orphaned = (await this.storage.listFolders(jobsFolder)).filter((jobId) => !this.jobExists(jobId));
    const confirmed = orphaned.filter((jobId) => this.suspects.has(jobId));
    for (const jobId of confirmed) {
      await this.storage.deletePrefix(jobPrefix(jobId));
      this.logger.info({ job: jobId }, 'files of no job deleted');
    }
    this.suspects = new Set(orphaned.filter((jobId) => !this.suspects.has(jobId)));
    return confirmed.length;
  }
}
