/**
 * Plain sharp as a script over a bucket runs it: each object fetched with the AWS SDK's GetObject, the
 * bench's pipeline (blur σ2, DIPS' JPEG settings) in one sharp call, the result stored with PutObject,
 * sharpInFlight at a time. The S3 rows' second baseline: the same bytes moved as DIPS' workers move them.
 * It runs as its own process, so that s3rver (in the bench's process) is not counted, and reads the S3
 * settings from the environment as a master does:
 *   node dist/bench/plain-sharp-s3.js PREFIX   (prints {"seconds", "workCpuMs"} for every object under PREFIX)
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { z } from 'zod';
import { jpegOut } from './dips-job.js';
import { inParallel, sharpInFlight } from './plain-sharp.js';

/** What one run printed: wall time and the process's CPU for the whole prefix. */
const scriptRun = z.object({ seconds: z.number(), workCpuMs: z.number() });
export type ScriptRun = z.infer<typeof scriptRun>;

/** Runs the script over `prefix` of the bucket `env` names, in a child process. */
export async function plainSharpOverS3(env: NodeJS.ProcessEnv, prefix: string): Promise<ScriptRun> {
  const child = spawn(process.execPath, [import.meta.filename, prefix], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`plain-sharp-s3 exited with ${code}`);
  return scriptRun.parse(JSON.parse(output));
}

async function main(prefix: string): Promise<void> {
  const bucket = process.env.DIPS_S3_BUCKET!;
  const client = new S3Client({ requestChecksumCalculation: 'WHEN_REQUIRED' });
  const keys: string[] = [];
  for (let token: string | undefined; ; ) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((object) => object.Key!));
    if (!(token = page.NextContinuationToken)) break;
  }
  const processObject = async (key: string, under: string) => {
    const { Body } = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const result = await sharp(Buffer.from(await Body!.transformToByteArray())).autoOrient().blur(2).jpeg(jpegOut).toBuffer();
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${under}/${key}`, Body: result }));
  };
  // A first pass over a few objects: the SDK's and sharp's start-up is not the batch's cost.
  await inParallel(keys.slice(0, 8), sharpInFlight, (key) => processObject(key, 'plain-warm'));
  const cpu = process.cpuUsage();
  const start = performance.now();
  await inParallel(keys, sharpInFlight, (key) => processObject(key, 'plain-out'));
  const used = process.cpuUsage(cpu);
  process.stdout.write(JSON.stringify({ seconds: (performance.now() - start) / 1000, workCpuMs: (used.user + used.system) / 1000 } satisfies ScriptRun));
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) await main(process.argv[2]!);
