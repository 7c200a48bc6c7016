import { createRequire } from 'node:module';

/*
 * s3rver where it differs from S3 in what DIPS relies on, made to answer as S3 does. Imported for its
 * effect by every loopback S3 server of the bench and the tests: bench/s3-server.ts in process, and
 * test/batch/s3-server.mjs (from dist/) in a process of its own.
 */

const requireS3rver = createRequire(import.meta.url);

// s3rver builds the canonical URI of a bucket-level request (ListObjectsV2) as `/bucket` while the SDK
// signs `/bucket/`, so every listing would fail with SignatureDoesNotMatch; S3 signs the path as sent.
const signing = requireS3rver('@20minutes/s3rver/lib/signature/v4.js') as { getStringToSign(request: { uri: string }, signature: unknown): string };
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
