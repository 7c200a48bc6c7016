import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterAnswer } from '../../services/protocol/newcomer.js';
import { corpus, getCluster, waitUntil } from '../helpers/api.js';
import { dipsBin, killAll, runDips, startCluster, startDips, type DipsProcess } from '../helpers/processes.js';

const version = (JSON.parse(await readFile(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;
let work: string;
let master: DipsProcess;
/** The master and the CLI agree on a small file limit, so 7 photos become jobs of 3, 3 and 1. */
const env = { DIPS_MAX_FILES: '3', DIPS_TOKEN: '' };

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'dips-submit-'));
  ({ master } = await startCluster({ workers: 1, dataDir: path.join(work, 'data'), env }));
  await waitUntil(() => getCluster(master.url), ({ workers }) => workers.length === 1, 30_000, 'a worker');
});

afterAll(killAll);

describe('dips basics', () => {
  it('--version, -V and -v print the version', async () => {
    for (const flag of ['--version', '-V', '-v']) {
      const run = await runDips([flag]);
      expect([run.code, run.stdout]).toEqual([0, `${version}\n`]);
    }
  });

  it('a closed pipe (dips ops | true) ends quietly with exit 0', async () => {
    const child = spawn('bash', ['-c', `set -o pipefail; "${process.execPath}" "${dipsBin}" ops --json | true`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect([code, stderr]).toEqual([0, '']);
  });

  it('prints the help with the exit codes', async () => {
    const help = await runDips(['--help']);
    expect(help.stdout).toMatch(/Exit codes: 0 every image done; 2 .*some images failed/);
  });
});

describe('dips submit', () => {
  it('checks every path before uploading and names each problem', async () => {
    const empty = path.join(work, 'empty');
    await mkdir(empty);
    const run = await runDips(['submit', 'missing.jpg', empty, corpus('aqua.jpg'), '--pipeline', '[]', '--master', master.url], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`dips: nothing was sent:\n  missing.jpg: no such file or directory\n  ${empty}: a directory with no image files (.jpg .jpeg .jpe .png .webp .tif .tiff .avif .gif)\n`);
  });

  it('sends a directory in jobs under the file limit, keeps existing results unless --overwrite', async () => {
    const photos = ['aqua.jpg', 'dune.jpg', 'freshflower.jpg', 'ladybird.jpg', 'storm.jpg', 'wood.jpg', 'garden-odd.png'];
    const inputs = path.join(work, 'photos');
    await mkdir(inputs);
    for (const photo of photos) await copyFile(corpus(photo), path.join(inputs, photo));
    await writeFile(path.join(inputs, 'notes.txt'), 'not an image: skipped by extension');
    const out = path.join(work, 'results');
    const args = ['submit', inputs, '--pipeline', '[{"op":"invert"}]', '--out', out, '--master', master.url];

    const first = await runDips(args, env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr.match(/^job \S+ accepted \((\d) images?\)$/gm)?.map((line) => line.replace(/^job \S+ /, ''))).toEqual(['accepted (3 images)', 'accepted (3 images)', 'accepted (1 image)']);
    expect(first.stderr.match(/^job \S+ succeeded: \d succeeded$/gm)).toHaveLength(3);
    expect((await readdir(out)).sort()).toEqual([...photos].sort());
    expect(first.stdout.trim().split('\n').sort()).toEqual(photos.map((photo) => path.join(out, photo)).sort());

    const mine = path.join(out, 'aqua.jpg');
    await writeFile(mine, 'my own file, not to be replaced');
    const again = await runDips(args, env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`${mine}: exists, kept (--overwrite replaces it)`);
    expect(await readFile(mine, 'utf8')).toBe('my own file, not to be replaced');
    expect(again.stdout).toBe('');

    const replaced = await runDips([...args, '--overwrite'], env);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect((await readFile(mine)).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
  });
});

describe('dips submit to a master with no worker', () => {
  it('says the job is waiting because no worker is registered, and how to start one', async () => {
    const lonely = await startDips(['master', '--port', '0', '--data-dir', path.join(work, 'lonely')]);
    const child = spawn(process.execPath, [dipsBin, 'submit', corpus('aqua.jpg'), '--pipeline', '[{"op":"invert"}]', '--master', lonely.url], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DIPS_TOKEN: '' } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      await waitUntil(async () => stderr, (text) => /the job is waiting/.test(text), 30_000, 'the waiting message');
      expect(stderr).toContain(`the job is waiting: no worker is registered with the master: start one with \`dips worker --master ${lonely.url}\`, or run \`dips up\``);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('dips cluster', () => {
  it('prints a summary and a workers table, or the master\'s JSON with --json', async () => {
    const run = await runDips(['cluster', '--master', master.url]);
    expect(run.code, run.stderr).toBe(0);
    const [summary, blank, header, row] = run.stdout.split('\n');
    expect(summary).toBe('1 worker, nothing queued; queue depth 0, desired capacity 1');
    expect(blank).toBe('');
    expect(header).toMatch(/^id +address +state +in flight +last heartbeat$/);
    expect(row).toMatch(/^\S+ +http:\/\/127\.0\.0\.1:\d+ +ready +0\/\d+ +\d+ s ago$/);
    const json = await runDips(['cluster', '--json', '--master', master.url]);
    expect(clusterAnswer.parse(JSON.parse(json.stdout)).workers).toHaveLength(1);
  });
});
