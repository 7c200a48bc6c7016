import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Bundle, buildBundle } from '../../lib/bundle/build-bundle.js';
import { repoRoot } from '../../lib/bundle/repo-root.js';
import { corpus, getCluster, pixelsOf, submit, waitForJob, waitUntil } from '../helpers/api.js';
import { type DipsProcess, killAll, launchDips } from '../helpers/processes.js';

const REPO = repoRoot();
const PHOTO = corpus('ladybird.jpg');
const TOKEN = randomBytes(24).toString('hex');
// Kept between runs (gitignored): `npm ci --omit=dev` compiles native modules and takes a minute.
const WORK_DIR = path.join(REPO, 'cdk.out', '.dips-bundle-test');

let scratch: string;
let first: Bundle;
let second: Bundle;
const started: DipsProcess[] = [];

beforeAll(async () => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'dips-bundle-'));
  // A frozen copy of the build's inputs: other engineers may rebuild dist/ while this runs.
  const inputs = path.join(scratch, 'inputs');
  mkdirSync(inputs);
  for (const entry of ['dist/services', 'web', 'package.json', 'package-lock.json']) {
    cpSync(path.join(REPO, entry), path.join(inputs, entry), { recursive: true });
  }
  first = await buildBundle({ repoRoot: inputs, workDir: WORK_DIR });
  const firstCopy = path.join(scratch, 'first.tar.gz');
  cpSync(first.archivePath, firstCopy);
  first = { ...first, archivePath: firstCopy };
  second = await buildBundle({ repoRoot: inputs, workDir: WORK_DIR });
}, 600_000);

afterAll(async () => {
  await killAll();
  rmSync(scratch, { recursive: true, force: true });
});

it('is reproducible: the same inputs give the same bytes', () => {
  expect(second.sha256).toBe(first.sha256);
  expect(readFileSync(second.archivePath).equals(readFileSync(first.archivePath))).toBe(true);
});

it('holds sorted entries with fixed times and owners, the Node runtime and the production dependencies only', () => {
  const listing = spawnSync('tar', ['--list', '--verbose', '--full-time', '--numeric-owner', '--file', first.archivePath], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  expect(listing.status).toBe(0);
  const lines = listing.stdout.trim().split('\n');
  const names = lines.map((line) => line.split(/\s+/).slice(5).join(' '));
  expect(lines.every((line) => line.includes(' 0/0 ') && line.includes('1970-01-01 00:00:00'))).toBe(true);
  // Sorted as tar walks: folder by folder, names in byte order within each folder.
  const byFolder = (a: string, b: string) => {
    const [left, right] = [a.replace(/\/$/, '').split('/'), b.replace(/\/$/, '').split('/')];
    for (let index = 0; index < Math.min(left.length, right.length); index++) {
      if (left[index] !== right[index]) return left[index]! < right[index]! ? -1 : 1;
    }
    return left.length - right.length;
  };
  expect(names).toEqual([...names].sort(byFolder));
  expect(names).toContain('bin/node');
  expect(names).toContain('dist/services/cli/main.js');
  expect(names).toContain('package.json');
  expect(names.some((name) => name.startsWith('node_modules/@img/sharp-linux-x64/'))).toBe(true);
  expect(names.some((name) => name.endsWith('.node') && !name.startsWith('node_modules/@img/')), 'a native addon besides sharp').toBe(false);
  for (const devOnly of ['vitest', 'typescript', 'aws-cdk-lib', 'cdk-nag']) {
    expect(names.some((name) => name.startsWith(`node_modules/${devOnly}/`)), devOnly).toBe(false);
  }
});

/** Starts a bundled command with the bundle's own Node and resolves once it announces its URL. */
async function startFromBundle(root: string, args: string[]): Promise<DipsProcess> {
  const bundled = await launchDips(args, {
    node: path.join(root, 'bin', 'node'),
    cli: path.join(root, 'dist/services/cli/main.js'),
    cwd: root,
    // Nothing from the repository: no PATH entry, no NODE_PATH, not its working directory.
    env: { PATH: '/usr/bin:/bin', HOME: root, DIPS_TOKEN: TOKEN, DIPS_SCALE_IN_AFTER: '3600' },
  });
  started.push(bundled);
  return bundled;
}

/** What the bundled processes wrote, for failure messages. */
const logs = () => started.map((each) => each.log()).join('\n');

it('runs a master and a worker from an empty folder and processes a photo over HTTP', async () => {
  const root = path.join(scratch, 'unpacked');
  mkdirSync(root);
  expect(spawnSync('tar', ['-xzf', first.archivePath, '-C', root]).status).toBe(0);

  const { url: masterUrl } = await startFromBundle(root, ['master', '--port', '0', '--data-dir', path.join(root, 'data')]);
  await startFromBundle(root, ['worker', '--port', '0', '--master', masterUrl]);
  await waitUntil(() => getCluster(masterUrl, TOKEN), (cluster) => cluster.workers.length === 1, 60_000, `the worker to register\n${logs()}`);

  const id = await submit(masterUrl, [PHOTO], { pipeline: JSON.stringify([{ op: 'grayscale' }]), format: 'png' }, TOKEN);
  const job = await waitForJob(masterUrl, id, TOKEN, 60_000);
  expect(job, `${JSON.stringify(job)}\n${logs()}`).toMatchObject({ status: 'succeeded' });

  const result = await fetch(`${masterUrl}/v1/jobs/${id}/images/0`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(result.status).toBe(200);
  expect(result.headers.get('content-type')).toBe('image/png');
  const { width, height, channels, data } = await pixelsOf(Buffer.from(await result.arrayBuffer()));
  const input = await sharp(PHOTO).metadata();
  expect([width, height]).toEqual([input.width, input.height]);
  // Grey: every pixel's channels agree; and not blank: the photo's detail survived.
  let colouredPixels = 0;
  let spread = 0;
  for (let offset = 0; offset < data.length; offset += channels) {
    for (let channel = 1; channel < Math.min(channels, 3); channel++) if (data[offset + channel] !== data[offset]) colouredPixels++;
    spread = Math.max(spread, Math.abs(data[offset]! - data[0]!));
  }
  expect(colouredPixels).toBe(0);
  expect(spread).toBeGreaterThan(50);
}, 180_000);
