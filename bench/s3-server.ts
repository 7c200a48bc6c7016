import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import S3rver from '@20minutes/s3rver';

// s3rver builds the canonical URI of a bucket-level request (ListObjectsV2) as `/bucket` while the SDK
// signs `/bucket/`, so every listing would fail with SignatureDoesNotMatch (test/batch/s3-server.mjs
// says the same for its own process); S3 signs the path as sent.
const signing = createRequire(import.meta.url)('@20minutes/s3rver/lib/signature/v4.js') as { getStringToSign(request: { uri: string }, signature: unknown): string };
const getStringToSign = signing.getStringToSign;
signing.getStringToSign = (request, signature) => getStringToSign(/^\/[^/]+$/.test(request.uri) ? { ...request, uri: `${request.uri}/` } : request, signature);

// s3rver ignores If-Match on GetObject and x-amz-copy-source-if-match on CopyObject, which S3 answers
// with 412 PreconditionFailed when the object's ETag is another: the pins DIPS puts on an upload
// session's checked files. Checked here before s3rver's own handling, as S3 checks them.
interface ObjectContext {
  headers: Record<string, string | undefined>;
  params: { bucket: string; key: string };
  store: { getMetadata(bucket: string, key: string): Promise<{ etag: string }> };
}
type ObjectHandler = (ctx: ObjectContext) => Promise<void>;
const requireS3rver = createRequire(import.meta.url);
const objectControllers = requireS3rver('@20minutes/s3rver/lib/controllers/object.js') as { getObject: ObjectHandler; putObjectCopy: ObjectHandler };
const S3Error = requireS3rver('@20minutes/s3rver/lib/models/error.js') as new (code: string, message: string, detail?: Record<string, string>) => Error;
const unquoted = (etag: string) => etag.replace(/^"|"$/g, '');
function checkingPrecondition(handler: ObjectHandler, header: string, object: (ctx: ObjectContext) => { bucket: string; key: string }): ObjectHandler {
  return async (ctx) => {
    const wanted = ctx.headers[header];
    if (wanted !== undefined) {
      const { bucket, key } = object(ctx);
      const metadata = await ctx.store.getMetadata(bucket, key).catch(() => undefined);
      if (metadata && unquoted(metadata.etag) !== unquoted(wanted)) {
        throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: header });
      }
    }
    return handler(ctx);
  };
}
objectControllers.getObject = checkingPrecondition(objectControllers.getObject, 'if-match', (ctx) => ctx.params);
objectControllers.putObjectCopy = checkingPrecondition(objectControllers.putObjectCopy, 'x-amz-copy-source-if-match', (ctx) => {
  const [bucket = '', ...key] = decodeURI(ctx.headers['x-amz-copy-source'] ?? '').replace(/^\//, '').split('/');
  return { bucket, key: key.join('/') };
});

/** s3rver's fixed credentials: it checks signatures with them. */
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const region = 'us-east-1';

/** A bucket CORS rule, as services/storage/cors.ts declares the stack's (JOB_DATA_CORS). */
export interface CorsRule {
  allowedMethods: readonly string[];
  allowedOrigins: readonly string[];
  exposedHeaders: readonly string[];
  maxAgeSeconds: number;
}

/** The rule as the CORSConfiguration document PutBucketCors takes (and s3rver reads at start). */
function corsConfiguration(rule: CorsRule): string {
  const elements = (name: string, values: readonly string[]) => values.map((value) => `<${name}>${value}</${name}>`).join('');
  return (
    '<CORSConfiguration><CORSRule>' +
    elements('AllowedOrigin', rule.allowedOrigins) +
    elements('AllowedMethod', rule.allowedMethods) +
    elements('ExposeHeader', rule.exposedHeaders) +
    `<MaxAgeSeconds>${rule.maxAgeSeconds}</MaxAgeSeconds></CORSRule></CORSConfiguration>`
  );
}

/**
 * A real S3-protocol server (s3rver) on loopback (for the bench and the tests) with one bucket, files in a temporary directory, and the
 * settings that point the AWS SDK at it: `client` for this process, `env` for a spawned master.
 */
export async function startS3Server(bucket = 'dips-test', options: { cors?: CorsRule } = {}) {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-s3-'));
  const configs = options.cors ? [corsConfiguration(options.cors)] : [];
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket, configs }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    bucket,
    endpoint,
    client: new S3Client({ endpoint, region, credentials, forcePathStyle: true }),
    env: {
      DIPS_STORAGE: 's3',
      DIPS_S3_BUCKET: bucket,
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    } satisfies NodeJS.ProcessEnv,
    close: async () => {
      await server.close();
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
}
