import { copyFile, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corpus, waitUntil, getCluster } from '../helpers/api.js';
import { dipsBin, fastClusterEnv, killAll, startCluster } from '../helpers/processes.js';
import { openTerminal, type TerminalSession } from '../helpers/terminal.js';

const photos = ['aqua.jpg', 'dune.jpg', 'freshflower.jpg', 'ladybird.jpg', 'storm.jpg', 'wood.jpg', 'garden-odd.png', 'qr-on-photo.jpg'];
/** Processing 9 small photos on two loaded cores, with room for a busy CI. */
const JOB_TIMEOUT_MS = 90_000;

let work: string;
let masterUrl: string;
const sessions: TerminalSession[] = [];

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'dips-tty-'));
  const inputs = path.join(work, 'in');
  await mkdir(inputs);
  for (const photo of photos) await copyFile(corpus(photo), path.join(inputs, photo));
  // A JPEG cut short: its header passes the master's check, decoding it on a worker fails.
  await writeFile(path.join(inputs, 'broken.jpg'), (await readFile(corpus('storm.jpg'))).subarray(0, 20_000));
  const cluster = await startCluster({ workers: 2, dataDir: path.join(work, 'data') });
  masterUrl = cluster.master.url;
  await waitUntil(() => getCluster(masterUrl), ({ workers }) => workers.length === 2, 30_000, 'two workers');
});

afterAll(async () => {
  for (const session of sessions) session.close();
  await killAll();
});

describe('dips submit in a terminal (tmux)', () => {
  it.each([80, 160])('8 photos, one with a QR code, and a broken file at %i columns: a clean final screen, every line intact, exit code 2', async (columns) => {
    const out = path.join(work, `out-${columns}`);
    const session = openTerminal(
      [process.execPath, dipsBin, 'submit', path.join(work, 'in'), '--pipeline', '[{"op":"qr"},{"op":"grayscale"}]', '--out', out, '--master', masterUrl],
      { columns, rows: 40, env: { DIPS_TOKEN: '' }, cwd: work },
    );
    sessions.push(session);
    const screen = (await session.waitFor(/^EXIT=\d+$/, JOB_TIMEOUT_MS)).filter((row) => row !== '');

    const results = photos.map((photo) => path.join(out, photo));
    const expected: RegExp[] = [
      /^job [0-9a-f-]{36} accepted \(9 images\)$/,
      ...results.map((file) => new RegExp(`^${file.replace(/[.]/g, '\\.')}$`)),
      /^qr-on-photo\.jpg\s+qr: \["DIPS test: tile 42 of 100"\]$/,
      /^failed: broken\.jpg: cannot decode .*\S$/,
      /^processing \[█+\] 9\/9 images \| partial$/,
      /^job [0-9a-f-]{36} partial: 8 succeeded, 1 failed$/,
      /^EXIT=2$/,
    ];
    // Each expected line is on screen exactly once, whole, and nothing else is: no line written into the bar.
    for (const pattern of expected) expect(screen.filter((row) => pattern.test(row)), `${pattern} on\n${screen.join('\n')}`).toHaveLength(1);
    expect(screen, screen.join('\n')).toHaveLength(expected.length);
    // The bar is the last thing drawn before the summary: the prompt lands below it, not inside it.
    expect(screen.slice(-3).map((row) => row.split(' ')[0])).toEqual(['processing', 'job', 'EXIT=2']);
    expect((await readdir(out)).sort()).toEqual([...photos].sort());
  });
});

describe('dips up in a terminal', () => {
  it('logs for people (not JSON) and exits 0 on Ctrl-C, its workers too', async () => {
    const session = openTerminal([process.execPath, dipsBin, 'up', '--workers', '1', '--port', '0', '--data-dir', path.join(work, 'up-data')], {
      columns: 160,
      rows: 40,
      env: { ...fastClusterEnv, DIPS_LOG_LEVEL: 'info', DIPS_TOKEN: '' },
      cwd: work,
    });
    sessions.push(session);
    await session.waitFor(/worker listening/, 30_000);
    session.keys('C-c');
    const screen = await session.waitFor(/^EXIT=\d+$/, 30_000);
    expect(screen.filter((row) => /^EXIT=/.test(row)), screen.join('\n')).toEqual(['EXIT=0']);
    // pino-pretty lines ("[12:00:00] INFO (dips-master): master listening"), no JSON objects.
    expect(screen.some((row) => /^\[\d\d:\d\d:\d\d\] INFO \(dips-master\): master listening/.test(row)), screen.join('\n')).toBe(true);
    expect(screen.filter((row) => row.trimStart().startsWith('{"level"')), screen.join('\n')).toEqual([]);
    // The worker drained and stopped cleanly: the master's provider saw it exit with code 0.
    expect(screen.some((row) => /local worker stopped/.test(row))).toBe(true);
    expect(screen.join('\n')).not.toMatch(/code: [1-9]|exited unexpectedly/);
  });
});
