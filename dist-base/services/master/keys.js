/** Storage keys of a job's files: generated from ids and indexes only. */
export const jobPrefix = (jobId) => `jobs/${jobId}`;
/** Every input of a job (what a cancelled or finished job no longer needs). */
export const inputPrefix = (jobId) => `jobs/${jobId}/in`;
export const inputKey = (jobId, index) => `jobs/${jobId}/in/${index}`;
export const outputKey = (jobId, index) => `jobs/${jobId}/out/${index}`;
/** Intermediate k of a tiled image (k = 0: the decoded upload; stage k - 1 writes k): scratch, gone with the job. */
export const intermediateKey = (jobId, index, intermediate) => `jobs/${jobId}/work/${index}/stage-${intermediate}.v`;
/** The bands of a tiled image's output JPEG that its last stage's strips encoded (jpeg-restart.ts): scratch, joined into the output. */
export const jpegSegmentsPrefix = (jobId, index) => `jobs/${jobId}/work/${index}/jpeg`;
export const jpegSegmentKey = (jobId, index, segment) => `${jpegSegmentsPrefix(jobId, index)}/${segment}`;
//# sourceMappingURL=keys.js.map