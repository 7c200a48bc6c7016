import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

export interface BundleOptions {
  /** The repository: its dist/, web/, package.json and package-lock.json go into the bundle. */
  repoRoot: string;
  /** Work folder: the staging tree, the dependency cache and the archive. Keep it out of git. */
  workDir: string;
}

export interface Bundle {
  /** A .tar.gz holding bin/node, bin/dips, dist/services, web, package.json and node_modules. */
  archivePath: string;
  /** sha256 of the archive, checked by the instances before unpacking. */
  sha256: string;
}

/** The work folder `cdk synth` and `npm run bundle` use: under cdk.out/, which git ignores. */
export function defaultWorkDir(repoRoot: string): string {
  return path.join(repoRoot, 'cdk.out', '.dips-bundle');
}

/** Path of the CLI inside the bundle (and inside /opt/dips on the instances). */
const BUNDLE_CLI = 'dist/services/cli/main.js';
const BUNDLE_NODE = 'bin/node';
/**
 * Builds the archive the instances run from. Reproducible: entries sorted, mtimes, owners and
 * gzip header fixed, so the same inputs give the same bytes and CDK uploads it only when it changed.
 */
export async function buildBundle(options: BundleOptions): Promise<Bundle> {
  const { repoRoot, workDir } = options;
  // sharp's binaries are installed for the build machine: it must match the instances.
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the bundle must be built on linux-x64 like the instances, not ${process.platform}-${process.arch}`);
  }
  const cli = path.join(repoRoot, BUNDLE_CLI);
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" before bundling`);

  const staging = path.join(workDir, 'staging');
  await rm(staging, { recursive: true, force: true });
  await mkdir(path.join(staging, 'bin'), { recursive: true });
  await cp(path.join(repoRoot, 'dist', 'services'), path.join(staging, 'dist', 'services'), { recursive: true });
  await cp(path.join(repoRoot, 'web'), path.join(staging, 'web'), { recursive: true });
  await writeFile(path.join(staging, 'package.json'), await productionManifest(repoRoot));
  // The build machine's own Node: linux-x64 and the ABI node_modules were compiled for.
  await copyFile(process.execPath, path.join(staging, BUNDLE_NODE));
  await writeFile(
    path.join(staging, 'bin', 'dips'),
    '#!/bin/sh\n# The dips CLI on the bundled Node runtime.\nhere=$(dirname "$(readlink -f "$0")")\nexec "$here/node" "$here/../dist/services/cli/main.js" "$@"\n',
  );
  await chmod(path.join(staging, 'bin', 'dips'), 0o755);

  const dependencies = await productionDependencies(repoRoot, workDir);
  const archivePath = path.join(workDir, 'dips-bundle.tar.gz');
  const partial = `${archivePath}.partial`;
  const tar = spawn(
    'tar',
    [
      '--create', '--format=gnu', '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner',
      '--mode=u+rw,go-w', '--file=-',
      // Top-level entries in name order too, though they come from two folders.
      '--directory', staging, 'bin', 'dist',
      '--directory', dependencies, 'node_modules',
      '--directory', staging, 'package.json', 'web',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let tarErrors = '';
  tar.stderr.on('data', (chunk: Buffer) => (tarErrors += chunk.toString()));
  const tarExit = new Promise<number | null>((resolve) => tar.on('close', resolve));
  // Node's gzip header carries no timestamp or file name: reproducible by construction.
  await pipeline(tar.stdout, createGzip({ level: 6 }), createWriteStream(partial));
  const code = await tarExit;
  if (code !== 0) throw new Error(`tar failed (exit ${code}): ${tarErrors.trim()}`);
  await rename(partial, archivePath);
  return { archivePath, sha256: await sha256File(archivePath) };
}

/** package.json without scripts: `npm ci` in staging must not run the repo's prepare (build) script. */
async function productionManifest(repoRoot: string): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as Record<string, unknown>;
  delete manifest.scripts;
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/**
 * `npm ci --omit=dev` in a folder of its own, cached by lock file, Node ABI and platform. Install
 * scripts are skipped: nothing compiles (SQLite is Node's own), and sharp's binaries come as ordinary
 * packages (@img/sharp-linux-x64).
 */
async function productionDependencies(repoRoot: string, workDir: string): Promise<string> {
  const lock = await readFile(path.join(repoRoot, 'package-lock.json'));
  const manifest = await productionManifest(repoRoot);
  const key = createHash('sha256')
    .update(lock)
    .update(manifest)
    .update(`${process.versions.modules}-${process.platform}-${process.arch}`)
    .digest('hex')
    .slice(0, 16);
  const folder = path.join(workDir, `dependencies-${key}`);
  if (existsSync(path.join(folder, 'node_modules', '.package-lock.json'))) return folder;

  await rm(folder, { recursive: true, force: true });
  await mkdir(folder, { recursive: true });
  await writeFile(path.join(folder, 'package.json'), manifest);
  await copyFile(path.join(repoRoot, 'package-lock.json'), path.join(folder, 'package-lock.json'));
  const npm = spawnSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: folder,
    encoding: 'utf8',
  });
  if (npm.status !== 0) {
    await rm(folder, { recursive: true, force: true });
    throw new Error(`npm ci --omit=dev failed in ${folder}:\n${npm.stderr || npm.error?.message}`);
  }
  // Installs for older lock files are dead weight (about 130 MB each).
  for (const entry of await readdir(workDir)) {
    if (entry.startsWith('dependencies-') && entry !== path.basename(folder)) await rm(path.join(workDir, entry), { recursive: true, force: true });
  }
  return folder;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
