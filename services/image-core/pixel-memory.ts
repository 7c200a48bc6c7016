/**
 * Share of a worker's memory (DIPS_WORKER_MEMORY_BYTES) one image's pixels may use, as a whole stage
 * does; the rest is Node, sharp and a second task. Its own module: the stack (lib/config.ts) sizes the
 * workers' budget from it without loading the image core.
 */
export const PIXEL_MEMORY_SHARE = 0.75;
