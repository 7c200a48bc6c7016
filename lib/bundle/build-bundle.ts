import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeReproducibleArchive } from './archive.js';
import { fetchNodeBinary, nodeRuntimePin, runNpm } from './node-runtime.js';
import type { BundleArch } from './target.js';

export interface BundleOptions {
  /** The repository: its dist/services, web/, package.json and package-lock.json go into the bundle. */
  repoRoot: string;
  /** Work folder: staging trees, the dependency and runtime caches. Keep it out of git. */
  workDir: string;
  /** The instances' CPU: picks the Node build and sharp's binaries. The build host's own does not matter. */
  arch: BundleArch;
  /** Where the archive goes (default: <workDir>/dips-bundle-<arch>.tar.gz). */
  archivePath?: string;
}

export interface Bundle {
  /** A .tar.gz holding bin/node, bin/dips, dist/services, web, package.json and node_modules. */
  archivePath: string;
  /** sha256 of the archive, checked by the instances before unpacking. */
  sha256: string;
  arch: BundleArch;
}

/** The work folder `cdk synth` and `npm run bundle` use: under cdk.out/, which git ignores. */
export function defaultWorkDir(repoRoot: string): string {
  return path.join(repoRoot, 'cdk.out', '.dips-bundle');
}

/** What goes into the bundle from the repository; the asset's version is their hash (see bundleInputsHash). */
export const BUNDLE_INPUTS = ['dist/services', 'web', 'package.json', 'package-lock.json', 'lib/bundle/node-runtime.json'] as const;

/** Path of the CLI inside the bundle (and inside /opt/dips on the instances). */
export const BUNDLE_CLI = 'dist/services/cli/main.js';

/**
 * Builds the archive the instances run, for `arch`, on any host: Node is the official Linux build
 * from the npm registry (integrity-pinned), sharp's Linux binaries come from npm's --os/--cpu/--libc
 * selection, and the archive is written in JavaScript. Reproducible: same inputs, same bytes.
 */
export async function buildBundle(options: BundleOptions): Promise<Bundle> {
  const { repoRoot, workDir, arch } = options;
  const cli = path.join(repoRoot, BUNDLE_CLI);
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" before bundling`);

  const pin = await nodeRuntimePin();
  const node = await fetchNodeBinary(arch, path.join(workDir, 'runtimes'), pin);
  const staging = path.join(workDir, `staging-${arch}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(path.join(staging, 'bin'), { recursive: true });
  await cp(path.join(repoRoot, 'dist', 'services'), path.join(staging, 'dist', 'services'), { recursive: true });
  await cp(path.join(repoRoot, 'web'), path.join(staging, 'web'), { recursive: true });
  await writeFile(path.join(staging, 'package.json'), await productionManifest(repoRoot));
  await copyFile(node, path.join(staging, 'bin', 'node'));
  await writeFile(
    path.join(staging, 'bin', 'dips'),
    `#!/bin/sh\n# The dips CLI on the bundled Node runtime.\nhere=$(dirname "$(readlink -f "$0")")\nexec "$here/node" "$here/../${BUNDLE_CLI}" "$@"\n`,
  );
  const dependencies = await productionDependencies(repoRoot, workDir, arch);
  await cp(path.join(dependencies, 'node_modules'), path.join(staging, 'node_modules'), { recursive: true });
  // npm's own bookkeeping: it names the install folder, which differs between hosts.
  await rm(path.join(staging, 'node_modules', '.package-lock.json'), { force: true });

  const archivePath = options.archivePath ?? path.join(workDir, `dips-bundle-${arch}.tar.gz`);
  await writeReproducibleArchive(staging, archivePath);
  await rm(staging, { recursive: true, force: true });
  return { archivePath, sha256: await sha256File(archivePath), arch };
}

/**
 * The bundle's version without building it: a hash of its inputs and target. CDK names the asset
 * by it, so synth, diff and deploy build only when it changes (and ls/destroy never build).
 */
export async function bundleInputsHash(repoRoot: string, arch: BundleArch): Promise<string> {
  const hash = createHash('sha256').update(`dips-bundle-v1\0${arch}\0`);
  for (const input of BUNDLE_INPUTS) {
    const full = path.join(repoRoot, input);
    if (!existsSync(full)) throw new Error(`${full} is missing: run "npm run build" before synthesizing`);
    const files = (await readdir(full, { recursive: true, withFileTypes: true }).catch(() => undefined))
      ?.filter((entry) => entry.isFile())
      .map((entry) => path.relative(full, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
      .sort() ?? [''];
    for (const file of files) {
      hash.update(`${input}/${file}\0`);
      hash.update(await readFile(file ? path.join(full, file) : full));
      hash.update('\0');
    }
  }
  return hash.digest('hex');
}

/** package.json without scripts: `npm ci` in staging must not run the repo's prepare (build) script. */
async function productionManifest(repoRoot: string): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as Record<string, unknown>;
  delete manifest.scripts;
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/**
 * `npm ci --omit=dev` for Linux on `arch` with glibc, in a folder of its own cached by lock file and
 * target. npm picks sharp's @img/sharp-linux-<arch> packages from the lock file by --os/--cpu/--libc;
 * install scripts are skipped: nothing compiles (SQLite is Node's own). No .bin links (they differ per host).
 */
async function productionDependencies(repoRoot: string, workDir: string, arch: BundleArch): Promise<string> {
  const lock = await readFile(path.join(repoRoot, 'package-lock.json'));
  const manifest = await productionManifest(repoRoot);
  const key = createHash('sha256').update(lock).update(manifest).update(`linux-${arch}-glibc`).digest('hex').slice(0, 16);
  const folder = path.join(workDir, `dependencies-${arch}-${key}`);
  if (existsSync(path.join(folder, 'node_modules', '.package-lock.json'))) return folder;

  await rm(folder, { recursive: true, force: true });
  await mkdir(folder, { recursive: true });
  await writeFile(path.join(folder, 'package.json'), manifest);
  await copyFile(path.join(repoRoot, 'package-lock.json'), path.join(folder, 'package-lock.json'));
  const npm = runNpm(
    ['ci', '--omit=dev', '--ignore-scripts', '--no-bin-links', '--os=linux', `--cpu=${arch}`, '--libc=glibc', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'],
    folder,
  );
  if (npm.status !== 0) {
    await rm(folder, { recursive: true, force: true });
    throw new Error(`npm ci --omit=dev --cpu=${arch} failed in ${folder}:\n${npm.stderr}`);
  }
  // Installs for older lock files are dead weight (about 130 MB each).
  for (const entry of await readdir(workDir)) {
    if (entry.startsWith(`dependencies-${arch}-`) && entry !== path.basename(folder)) await rm(path.join(workDir, entry), { recursive: true, force: true });
  }
  return folder;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
