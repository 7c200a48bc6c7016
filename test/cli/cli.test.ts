import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { childrenRunning } from '../../bench/cluster.js';
import { describeCatalogue, describeOperations } from '../../services/image-core/catalogue.js';
import { corpus, getCluster, getJob, pixelsOf, submit, waitUntil } from '../helpers/api.js';
import { dipsBin, exited, fastClusterEnv, killAll, launchDips, runDips, startDips } from '../helpers/processes.js';
import { workerNodeArgs } from '../../services/worker/node-args.js';

afterEach(killAll);

describe('dips ops', () => {
  it('lists every operation of the catalogue, and prints it as the API serves it with --json', async () => {
    const text = await runDips(['ops']);
    expect(text.code).toBe(0);
    for (const op of describeOperations()) expect(text.stdout).toMatch(new RegExp(`^${op.name}\\b`, 'm'));
    const json = await runDips(['ops', '--json']);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(JSON.stringify(describeCatalogue())));
  });

  it('with a name prints that operation in full: each parameter, its range, default and meaning, and how it tiles', async () => {
    const blur = await runDips(['ops', 'blur']);
    expect(blur.code, blur.stderr).toBe(0);
    expect(blur.stdout.split('\n')).toEqual([
      'blur',
      `    ${describeOperations().find((op) => op.name === 'blur')!.description}`,
      'parameters:',
      '    sigma: number 0.3 to 100, default 2; standard deviation of the Gaussian, in pixels',
      'tiling: neighbourhood, tiled',
      '',
    ]);
    const crop = await runDips(['ops', 'crop']);
    expect(crop.stdout).toMatch(/^ {4}left: integer 0 to 1000000, required; distance of the rectangle from the left edge, in pixels$/m);
    expect((await runDips(['ops', 'resize'])).stdout).toMatch(/^tiling: runs whole: resampling places its kernel by the global scale$/m);
    expect((await runDips(['ops', 'equalize'])).stdout).toMatch(/^parameters: none$/m);
    const json = await runDips(['ops', 'crop', '--json']);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(JSON.stringify(describeOperations().find((op) => op.name === 'crop'))));
  });

  it('with a misspelt name says which one was likely meant, and exits 1', async () => {
    const typo = await runDips(['ops', 'blurr']);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/^dips: unknown operation "blurr" \(did you mean "blur"\?\); known: grayscale, /);
    expect(typo.stdout).toBe('');
  });
});

describe('dips process', () => {
  it('writes DIR/<name without extension>.<format extension>, keeping the input format by default', async () => {
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-process-'));
    const pipeline = '[{"op":"grayscale"}]';
    const run = await runDips(['process', corpus('aqua.jpg'), corpus('garden-odd.png'), '--pipeline', pipeline, '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    expect((await fs.readdir(out)).sort()).toEqual(['aqua.jpg', 'garden-odd.png']);
    const converted = await runDips(['process', corpus('aqua.jpg'), '--pipeline', pipeline, '--out', out, '--format', 'webp']);
    expect(converted.code, converted.stderr).toBe(0);
    const webp = await pixelsOf(path.join(out, 'aqua.webp'));
    expect([webp.width, webp.height]).toEqual([1400, 875]);
  });

  it('names the file and the problem when an input or the pipeline is bad', async () => {
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-process-'));
    const notImage = path.join(out, 'notes.png');
    await fs.writeFile(notImage, 'not pixels');
    const bad = await runDips(['process', notImage, corpus('aqua.jpg'), '--pipeline', '[{"op":"invert"}]', '--out', out]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^dips process: notes\.png: not an image in a supported format/m);
    expect(await fs.readdir(out)).toContain('aqua.jpg');
    const badPipeline = await runDips(['process', corpus('aqua.jpg'), '--pipeline', '[{"op":"blur","sigma":"lots"}]', '--out', out]);
    expect(badPipeline.code).toBe(1);
    expect(badPipeline.stderr).toMatch(/step 1 \(blur\): sigma/);
  });

  it('never leaves a half-written result: a failed image keeps the file already there, and an unwritable one is named', async () => {
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-process-'));
    const first = await runDips(['process', corpus('aqua.jpg'), '--pipeline', '[{"op":"blur","sigma":2}]', '--out', out]);
    expect(first.code, first.stderr).toBe(0);
    const kept = await fs.readFile(path.join(out, 'aqua.jpg'));
    // The same name cut short: libvips starts writing before it meets the cut.
    const cut = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'dips-process-in-')), 'aqua.jpg');
    await fs.writeFile(cut, kept.subarray(0, 50_000));
    await fs.mkdir(path.join(out, 'dune.jpg', 'inside'), { recursive: true });
    const again = await runDips(['process', cut, corpus('dune.jpg'), '--pipeline', '[{"op":"blur","sigma":2}]', '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^dips process: aqua\.jpg: .*premature end/m);
    expect(again.stderr).toContain(`dips process: ${path.join(out, 'dune.jpg')}: `);
    expect((await fs.readFile(path.join(out, 'aqua.jpg'))).equals(kept)).toBe(true);
    expect((await fs.readdir(out)).sort()).toEqual(['aqua.jpg', 'dune.jpg']);
  });

  it('refuses a bad --format or --quality once, naming the value, before reading any file', async () => {
    const out = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'dips-process-')), 'results');
    const refusals = [
      [['--format', 'jpg'], "option '--format <format>' argument 'jpg' is invalid. it is not one of jpeg, png, webp, tiff, avif (did you mean \"jpeg\"?)."],
      [['--quality', '500'], "option '--quality <q>' argument '500' is invalid. it must be an integer from 1 to 100."],
      [['--quality', 'high'], "option '--quality <q>' argument 'high' is invalid. it must be an integer from 1 to 100."],
    ] as const;
    for (const [flags, message] of refusals) {
      const run = await runDips(['process', corpus('aqua.jpg'), corpus('dune.jpg'), '--pipeline', '[]', '--out', out, ...flags]);
      expect(run.code, flags.join(' ')).toBe(1);
      expect(run.stderr.split('\n')[0]).toBe(`error: ${message}`);
    }
    await expect(fs.access(out)).rejects.toThrow();
  });
});

describe('dips up', () => {
  it('starts a master and N workers, replaces a worker that dies, prints the console URL, and stops them all on SIGTERM', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-up-'));
    const up = await startDips(['up', '--workers', '2', '--port', '0', '--data-dir', dataDir]);
    const readyWorkers = async () => {
      const { workers } = await getCluster(up.url);
      return workers.filter((worker) => worker.state === 'ready').map((worker) => worker.id);
    };
    const childrenOfUp = () => childrenRunning(up.child.pid!, 'worker');
    const first = await waitUntil(readyWorkers, (ids) => ids.length === 2, 30_000, 'two workers to register');
    const children = await childrenOfUp();
    const [storage] = await childrenRunning(up.child.pid!, 'storage');
    expect(storage).toBeDefined();
    expect(children).toHaveLength(2);

    process.kill(children[0]!, 'SIGKILL');
    const replaced = await waitUntil(
      async () => ({ ready: await readyWorkers(), children: await childrenOfUp() }),
      (state) => state.ready.length === 2 && !state.ready.every((id) => first.includes(id)) && state.children.length === 2,
      30_000,
      'the dead worker to be replaced',
    );
    expect(replaced.children).not.toContain(children[0]);
    expect(replaced.children).toContain(children[1]);

    up.child.kill('SIGTERM');
    await exited(up.child);
    expect(up.child.exitCode).toBe(0);
    for (const pid of replaced.children) expect(() => process.kill(pid, 0), `worker ${pid} still running`).toThrow();
    expect(() => process.kill(storage!, 0), `storage service ${storage} still running`).toThrow();
  });

  it('warns once of a DIPS_* variable that is a likely typo of a setting, and runs on', async () => {
    const run = await runDips(['ops', 'blur'], { DIPS_MAX_FILE: '5', DIPS_WORKER_SLOTS: '2' });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('dips: warning: DIPS_MAX_FILE is not a DIPS setting (did you mean DIPS_MAX_FILES?); it has no effect\n');
    expect(run.stdout).toMatch(/^blur\n/);
  });

  it('dips status answers with the master\'s error for an unknown job', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-up-'));
    const master = await startDips(['master', '--port', '0', '--data-dir', dataDir]);
    const status = await runDips(['status', 'no-such-job', '--master', master.url]);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/404 job_not_found/);
  });

  it('dips worker started without the worker\'s Node flags starts itself again with them and its libuv pool; a signal or the death of the first process stops the worker', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-up-'));
    const master = await startDips(['master', '--port', '0', '--data-dir', dataDir]);
    const byHand = () => launchDips(['worker', '--port', '0', '--master', master.url], { env: { ...process.env, ...fastClusterEnv, DIPS_TOKEN: '', UV_THREADPOOL_SIZE: '' } });
    const workerOf = async (parent: number) => {
      const [child] = await childrenRunning(parent, 'worker');
      expect(child, 'the relaunched worker').toBeDefined();
      return child!;
    };

    const first = await byHand();
    const worker = await workerOf(first.child.pid!);
    const argv = (await fs.readFile(`/proc/${worker}/cmdline`, 'utf8')).split('\0');
    expect(argv).toEqual(expect.arrayContaining([...workerNodeArgs]));
    expect((await fs.readFile(`/proc/${worker}/environ`, 'utf8')).split('\0')).toContain('UV_THREADPOOL_SIZE=4');
    await waitUntil(async () => (await getCluster(master.url)).workers.length, (count) => count === 1, 10_000, 'the worker to register');
    first.child.kill('SIGTERM');
    await exited(first.child);
    expect(first.child.exitCode, first.log()).toBe(0);
    await waitUntil(async () => fs.access(`/proc/${worker}`).then(() => true, () => false), (alive) => !alive, 10_000, 'the worker to stop');

    const second = await byHand();
    const orphan = await workerOf(second.child.pid!);
    second.child.kill('SIGKILL');
    await waitUntil(async () => fs.access(`/proc/${orphan}`).then(() => true, () => false), (alive) => !alive, 10_000, 'the worker to stop with its first process');
  });

  it('dips master stops cleanly on SIGTERM while its scaler still retries its start (a worker group not there yet)', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-master-'));
    // An Auto Scaling endpoint on loopback that knows no group: each start of the scaler fails at once, and it retries.
    const autoScaling = http.createServer((req, res) => {
      req.resume();
      res.setHeader('content-type', 'text/xml');
      res.end('<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingGroupsResult><AutoScalingGroups/></DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>');
    });
    autoScaling.listen(0, '127.0.0.1');
    await once(autoScaling, 'listening');
    const endpoint = `http://127.0.0.1:${(autoScaling.address() as AddressInfo).port}`;
    const aws = { DIPS_ASG_NAME: 'dips-test-workers', AWS_REGION: 'eu-west-3', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_ENDPOINT_URL: endpoint };
    const master = spawn(process.execPath, [dipsBin, 'master', '--port', '0', '--data-dir', dataDir], { env: { ...process.env, ...fastClusterEnv, DIPS_TOKEN: '', ...aws }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let output = '';
      master.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      master.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await waitUntil(async () => output, (text) => text.includes('the scaler could not start; retrying'), 20_000, 'the scaler to retry its start');
      master.kill('SIGTERM');
      await exited(master);
      expect({ code: master.exitCode, signal: master.signalCode }, output).toEqual({ code: 0, signal: null });
      expect(output, 'the scaler was retrying, not stopped by something else').toContain('Auto Scaling group \\"dips-test-workers\\" (DIPS_ASG_NAME) does not exist');
      // It never came up, so it announces no URL on the way out.
      expect(output).not.toContain('DIPS master:');
    } finally {
      master.kill('SIGKILL');
      autoScaling.close();
    }
  });

  it('dips cancel cancels a job that has not run, and with --purge removes it; an unknown one is the master\'s 404', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-up-'));
    // No worker: the jobs wait.
    const master = await startDips(['master', '--port', '0', '--data-dir', dataDir]);
    const first = await submit(master.url, [corpus('aqua.jpg'), corpus('dune.jpg')], { pipeline: '[{"op":"invert"}]' });
    const canceled = await runDips(['cancel', first, '--master', master.url]);
    expect(canceled.code, canceled.stderr).toBe(0);
    expect(canceled.stdout).toBe(`job ${first} canceled: 0 done, 0 failed of 2\n`);
    expect((await getJob(master.url, first)).status).toBe('canceled');
    const twice = await runDips(['cancel', first, '--master', master.url]);
    expect(twice.stdout).toBe(`job ${first} canceled: 0 done, 0 failed of 2\n`);

    const second = await submit(master.url, [corpus('aqua.jpg')], { pipeline: '[{"op":"invert"}]' });
    const jobFolders = path.join(dataDir, 'files', 'jobs');
    expect(await fs.readdir(jobFolders)).toContain(second);
    const purged = await runDips(['cancel', second, '--purge', '--master', master.url]);
    expect([purged.code, purged.stdout]).toEqual([0, `job ${second} removed, with its records and files\n`]);
    expect((await fetch(`${master.url}/v1/jobs/${second}`)).status).toBe(404);
    expect(await fs.readdir(jobFolders)).not.toContain(second);

    const unknown = await runDips(['cancel', 'no-such-job', '--master', master.url]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/404 job_not_found/);
  });
});
