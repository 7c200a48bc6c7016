import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE_INPUTS, BUNDLE_VERSION_FILE, type Bundle, buildBundle, bundleInputsHash } from '../../lib/bundle/build-bundle.js';
import { repoRoot } from '../../lib/bundle/repo-root.js';
import { ARCH_FACTS, type BundleArch } from '../../lib/bundle/target.js';
import { corpus, getCluster, pixelsOf, submit, waitForJob, waitUntil } from '../helpers/api.js';
import { type DipsProcess, killAll, launchDips } from '../helpers/processes.js';
import { ARM64_SYSROOT, ensureArm64Emulation, QEMU } from './qemu.js';
import { workerNodeArgs } from '../../services/worker/node-args.js';

const REPO = repoRoot();
// The corpus's smallest photo: under qemu every pixel is emulated.
const PHOTO = corpus('aqua.jpg');
const TOKEN = randomBytes(24).toString('hex');
const WORKER_TOKEN = randomBytes(24).toString('hex');
// Staging trees and archives of this run; the Node builds and production installs are cached between
// runs under ~/.cache/dips/bundle (keyed by the pinned Node and the lock file), as for cdk deploy.
let scratch: string;
const bundles = {} as Record<BundleArch, Bundle>;
const started: DipsProcess[] = [];
let rebuilt: Bundle;
/** The frozen copy of the build's inputs. */
let inputs: string;

beforeAll(async () => {
  ensureArm64Emulation();
  scratch = mkdtempSync(path.join(os.tmpdir(), 'dips-bundle-'));
  // A frozen copy of the build's inputs: other engineers may rebuild dist/ while this runs.
  inputs = path.join(scratch, 'inputs');
  for (const entry of BUNDLE_INPUTS) cpSync(path.join(REPO, entry), path.join(inputs, entry), { recursive: true });
  // Both built here, on x86-64, at once (one production install serves both), and x64 a second time
  // in another work folder, to compare the bytes.
  const build = (arch: BundleArch, name: string) => buildBundle({ repoRoot: inputs, workDir: path.join(scratch, `work-${name}`), arch, archivePath: path.join(scratch, `${name}.tar.gz`) });
  [bundles.x64, bundles.arm64, rebuilt] = await Promise.all([build('x64', 'bundle-x64'), build('arm64', 'bundle-arm64'), build('x64', 'bundle-x64-again')]);
}, 600_000);

afterAll(async () => {
  await killAll();
  rmSync(scratch, { recursive: true, force: true });
});

it('is reproducible: the same inputs give the same bytes', () => {
  expect(rebuilt.version).toBe(bundles.x64.version);
  expect(readFileSync(rebuilt.archivePath).equals(readFileSync(bundles.x64.archivePath))).toBe(true);
});

/** The entries of an archive: path, mode and mtime, as an unpacker sees them. */
interface ArchiveEntry {
  path: string;
  type: string;
  mode: number;
  mtime: number;
  uid: number | undefined;
}

async function entriesOf(archive: string): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [];
  await tar.t({
    file: archive,
    onReadEntry: (entry) => entries.push({ path: entry.path, type: entry.type, mode: entry.mode ?? 0, mtime: entry.mtime?.getTime() ?? -1, uid: entry.uid }),
  });
  return entries;
}

const unpacked = new Map<BundleArch, string>();
/** The bundle unpacked once per architecture, with the system tar, as lib/bundle/bootstrap.sh does. */
function unpack(arch: BundleArch): string {
  if (!unpacked.has(arch)) {
    const root = path.join(scratch, `unpacked-${arch}`);
    mkdirSync(root, { recursive: true });
    expect(spawnSync('tar', ['-xzf', bundles[arch].archivePath, '-C', root]).status).toBe(0);
    unpacked.set(arch, root);
  }
  return unpacked.get(arch)!;
}

const inFolder = (folder: string, pattern: RegExp) => readdirSync(folder).filter((name) => pattern.test(name)).map((name) => path.join(folder, name));

/** e_machine of an ELF file (offset 18, little-endian), or undefined when it is no ELF file. */
function elfMachine(file: string): number | undefined {
  const header = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  readSync(fd, header, 0, 20, 0);
  closeSync(fd);
  return header.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])) ? header.readUInt16LE(18) : undefined;
}

describe.each(['x64', 'arm64'] as const)('the %s bundle', (arch) => {
  it('holds sorted entries with fixed times, no owners, Linux modes, and the production dependencies only, without their source maps', async () => {
    const entries = await entriesOf(bundles[arch].archivePath);
    const names = entries.map((entry) => entry.path.replace(/\/$/, ''));
    // Files carry mtime 0; folders none at all (portable mode), so the unpacker's clock fills them in.
    expect(entries.filter((entry) => entry.uid || (entry.mtime !== 0 && entry.type !== 'Directory'))).toEqual([]);
    expect(entries.filter((entry) => entry.type === 'Directory' && entry.mode !== 0o755)).toEqual([]);
    expect(names).toContain('bin/node');
    expect(names).toContain(BUNDLE_VERSION_FILE);
    expect(names).toContain('dist/services/cli/main.js');
    expect(entries.find((entry) => entry.path === 'bin/node')!.mode).toBe(0o755);
    expect(entries.find((entry) => entry.path === 'package.json')!.mode).toBe(0o644);
    expect(names.some((name) => name.startsWith(`node_modules/@img/sharp-linux-${arch}/`))).toBe(true);
    const otherArch = arch === 'x64' ? 'arm64' : 'x64';
    expect(names.some((name) => name.includes(`sharp-linux-${otherArch}`) || name.includes('sharp-linuxmusl') || name.includes('sharp-darwin'))).toBe(false);
    expect(names.some((name) => name.endsWith('.node') && !name.startsWith('node_modules/@img/')), 'a native addon besides sharp').toBe(false);
    expect(names.filter((name) => name.startsWith('node_modules/') && name.endsWith('.map'))).toEqual([]);
    for (const devOnly of ['vitest', 'typescript', 'aws-cdk-lib', 'cdk-nag', '.bin']) {
      expect(names.some((name) => name.startsWith(`node_modules/${devOnly}/`)), devOnly).toBe(false);
    }
  });

  it(`carries node and sharp as ELF binaries for ${ARCH_FACTS[arch].label}`, () => {
    const root = unpack(arch);
    const expected = ARCH_FACTS[arch].elfMachine;
    expect(elfMachine(path.join(root, 'bin', 'node'))).toBe(expected);
    const binaries = [
      ...inFolder(path.join(root, 'node_modules', '@img', `sharp-linux-${arch}`, 'lib'), /\.node$/),
      ...inFolder(path.join(root, 'node_modules', '@img', `sharp-libvips-linux-${arch}`, 'lib'), /^libvips-cpp\.so/),
    ];
    expect(binaries).toHaveLength(2);
    for (const binary of binaries) expect(elfMachine(binary), binary).toBe(expected);
  });

  it('names its version, the hash of its inputs that the stack puts in the bundle parameter', async () => {
    expect(readFileSync(path.join(unpack(arch), BUNDLE_VERSION_FILE), 'utf8').trim()).toBe(await bundleInputsHash(inputs, arch));
    expect(bundles[arch].version).toBe(await bundleInputsHash(inputs, arch));
  });
});

/** The bundle's own Node, run natively for x64 and under qemu-user for arm64. */
function bundledNode(arch: BundleArch, root: string): string {
  const node = path.join(root, 'bin', 'node');
  if (arch === 'x64') return node;
  const wrapper = path.join(scratch, 'node-arm64');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${QEMU} -L ${ARM64_SYSROOT} ${node} "$@"\n`);
  chmodSync(wrapper, 0o755);
  return wrapper;
}

/** Starts a bundled command with the bundle's own Node and resolves once it announces its URL. */
async function startFromBundle(arch: BundleArch, root: string, args: string[]): Promise<DipsProcess> {
  const bundled = await launchDips(args, {
    node: bundledNode(arch, root),
    // A worker with the Node flags an instance's service gives it (DIPS_NODE_ARGS): under qemu-user a
    // worker could not start itself again with them, since its Node runs only through the wrapper.
    ...(args[0] === 'worker' ? { nodeArgs: workerNodeArgs } : {}),
    cli: path.join(root, 'dist/services/cli/main.js'),
    cwd: root,
    // Nothing from the repository: no PATH entry, no NODE_PATH, not its working directory.
    // NODE_COMPILE_CACHE: in the bundle's folder, as on an instance (startup under qemu is mostly compiling).
    env: { PATH: '/usr/bin:/bin', HOME: root, DIPS_TOKEN: TOKEN, DIPS_WORKER_TOKEN: WORKER_TOKEN, DIPS_SCALE_IN_AFTER: '3600', NODE_COMPILE_CACHE: path.join(root, '.compile-cache') },
  });
  started.push(bundled);
  return bundled;
}

/** What the bundled processes wrote, for failure messages. */
const logs = () => started.map((each) => each.log()).join('\n');

/**
 * The x64 master serves both runs. Under qemu every instruction is emulated (an arm64 master alone
 * costs ~10 s of CPU to start, and more for each request the test makes): the arm64 run emulates what
 * only arm64 can show, its Node and sharp's arm64 binaries starting DIPS and processing a photo. The
 * master is the same JavaScript on the same bundled Node, with no native part of its own (see above).
 */
it.each(['x64', 'arm64'] as const)('the %s bundle runs a worker from an empty folder (its master from the x64 bundle) and processes a photo over HTTP', async (arch) => {
  const masterRoot = unpack('x64');
  const { url: masterUrl } = await startFromBundle('x64', masterRoot, ['master', '--port', '0', '--data-dir', path.join(masterRoot, `data-${arch}`)]);
  await startFromBundle(arch, unpack(arch), ['worker', '--port', '0', '--master', masterUrl]);
  await waitUntil(() => getCluster(masterUrl, TOKEN), (cluster) => cluster.workers.length === 1, 120_000, `the worker to register\n${logs()}`);

  const id = await submit(masterUrl, [PHOTO], { pipeline: JSON.stringify([{ op: 'grayscale' }]), format: 'png' }, TOKEN);
  const job = await waitForJob(masterUrl, id, TOKEN, 120_000);
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
  await killAll();
  started.length = 0;
}, 300_000);
