/** Storage keys of a job's files: generated from ids and indexes only. */
/** The folder holding one folder per job (what the sweep of files of no job lists). */
export const jobsFolder = 'jobs';
export const jobPrefix = (jobId: string): string => `${jobsFolder}/${jobId}`;
/** Every input of a job (what a cancelled or finished job no longer needs). */
export const inputPrefix = (jobId: string): string => `${jobPrefix(jobId)}/in`;
export const inputKey = (jobId: string, index: number): string => `${inputPrefix(jobId)}/${index}`;
export const outputKey = (jobId: string, index: number): string => `${jobPrefix(jobId)}/out/${index}`;
/** Intermediate k of a tiled image (k = 0: the decoded upload; stage k - 1 writes k): scratch, gone with the job. */
export const intermediateKey = (jobId: string, index: number, intermediate: number): string => `${jobPrefix(jobId)}/work/${index}/stage-${intermediate}.v`;
/** The bands of a tiled image's output JPEG that its last stage's strips encoded (jpeg-restart.ts): scratch, joined into the output. */
export const jpegSegmentsPrefix = (jobId: string, index: number): string => `${jobPrefix(jobId)}/work/${index}/jpeg`;
export const jpegSegmentKey = (jobId: string, index: number, segment: number): string => `${jpegSegmentsPrefix(jobId, index)}/${segment}`;
