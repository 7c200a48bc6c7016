/**
 * The CORS rule of job data: the bucket's (lib/storage.ts) and the local storage service's, its stand-in.
 * A browser follows the console's result requests to presigned GETs (GET /v1/jobs/{id}/images/{n}
 * answers a 302 to the bucket) and sends an upload session's PUTs; without the rule it refuses to read
 * the answers. Any origin, because the presigned or signed URL is the authorisation (CORS only lets a
 * page read what its URL already grants), and because naming the API's CloudFront domain would make the
 * bucket depend on the distribution, which depends on the master, which depends on the bucket. ETag is
 * exposed for multipart clients, which report each part's.
 */
export const JOB_DATA_CORS = {
  allowedMethods: ['GET', 'HEAD', 'PUT'],
  allowedOrigins: ['*'],
  exposedHeaders: ['ETag'],
  maxAgeSeconds: 3600,
} as const;
