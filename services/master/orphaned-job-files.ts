import type { Logger } from '../shared/logger.js';
import { jobPrefix, jobsFolder } from './keys.js';
import type { LocalStorage } from './local-storage.js';

/**
 * How often the job folders on disk are compared with the jobs the store holds. Listing is one readdir,
 * so hourly is cheap; and a folder is deleted only when two passes an hour apart both found it without a
 * job, which no job being created is for that long (its inputs are stored, then its row committed, within
 * the request that sent them).
 */
export const orphanSweepMs = 3600_000;

/**
 * Job folders that no job owns: a master killed after storing a job's inputs but before committing the
 * job (the request was never answered 202), or a worker's late output for a job purged while its task
 * ran. The first pass only notes such folders; a later pass deletes those still without a job.
 * Local disk only: a data directory is its master's alone, where a bucket prefix may be shared by
 * several masters, each of which would see the others' jobs as orphans; in a bucket the lifecycle rule
 * the stack sets (jobDataExpiryDays) expires job data.
 */
export class OrphanedJobFiles {
  /** Folders the last pass found without a job. */
  private suspects = new Set<string>();

  constructor(
    private readonly storage: Pick<LocalStorage, 'listFolders' | 'deletePrefix'>,
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
