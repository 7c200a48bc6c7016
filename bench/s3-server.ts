import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import S3rver from '@20minutes/s3rver';
import './s3rver-fidelity.js';

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
