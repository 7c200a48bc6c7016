import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, link, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeReproducibleArchive } from './archive.js';
import { fetchNodeBinary, fetchPackage, nodeRuntimePin, runNpm } from './node-runtime.js';
/** The work folder `cdk deploy` and `npm run bundle` use: under cdk.out/, which git ignores. */
export function defaultWorkDir(repoRoot) {
    return path.join(repoRoot, 'cdk.out', '.dips-bundle');
}
/**
 * Where Node builds and production installs are kept, shared by every checkout of the repository
 * (each entry is keyed by what makes it: the pinned Node version, the lock file): DIPS_CACHE_DIR,
 * else $XDG_CACHE_HOME/dips/bundle, else ~/.cache/dips/bundle.
 */
export function bundleCacheDir() {
    if (process.env.DIPS_CACHE_DIR)
        return process.env.DIPS_CACHE_DIR;
    return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'dips', 'bundle');
}
/** What goes into the bundle from the repository; the bundle's version is their hash (see bundleInputsHash). */
export const BUNDLE_INPUTS = ['dist/services', 'web', 'package.json', 'package-lock.json', 'lib/bundle/node-runtime.json'];
/** Path of the CLI inside the bundle (and inside /opt/dips on the instances). */
export const BUNDLE_CLI = 'dist/services/cli/main.js';
/** The file in the bundle naming its version; the instances compare it with the stack's before installing. */
export const BUNDLE_VERSION_FILE = 'BUNDLE_VERSION';
/**
 * Builds the archive the instances run, for `arch`, on any host: Node is the official Linux build
 * from the npm registry (integrity-pinned), sharp's Linux binaries are those npm selects for that
 * CPU (see productionDependencies), and the archive is written in JavaScript. Reproducible: same
 * inputs, same bytes.
 */
export async function buildBundle(options) {
    const { repoRoot, workDir, arch } = options;
    const cacheDir = options.cacheDir ?? bundleCacheDir();
    const cli = path.join(repoRoot, BUNDLE_CLI);
    if (!existsSync(cli))
        throw new Error(`${cli} is missing: run "npm run build" before bundling`);
    const version = await bundleInputsHash(repoRoot, arch);
    const [node, dependencies] = await Promise.all([
        nodeRuntimePin().then((pin) => fetchNodeBinary(arch, path.join(cacheDir, 'runtimes'), pin)),
        productionDependencies(repoRoot, cacheDir, arch),
    ]);
    // The staging tree links to its parts instead of copying them (node_modules alone is 12,000 files):
    // the archive follows the links at the top level only.
    const staging = await mkdtempIn(workDir, `staging-${arch}-`);
    await mkdir(path.join(staging, 'bin'));
    await mkdir(path.join(staging, 'dist'));
    await Promise.all([
        symlink(path.resolve(repoRoot, 'dist', 'services'), path.join(staging, 'dist', 'services')),
        symlink(path.resolve(repoRoot, 'web'), path.join(staging, 'web')),
        symlink(path.resolve(dependencies, 'node_modules'), path.join(staging, 'node_modules')),
        symlink(path.resolve(node), path.join(staging, 'bin', 'node')),
        productionManifest(repoRoot).then((manifest) => writeFile(path.join(staging, 'package.json'), manifest)),
        writeFile(path.join(staging, BUNDLE_VERSION_FILE), `${version}\n`),
        writeFile(path.join(staging, 'bin', 'dips'), `#!/bin/sh\n# The dips CLI on the bundled Node runtime.\nhere=$(dirname "$(readlink -f "$0")")\nexec "$here/node" "$here/../${BUNDLE_CLI}" "$@"\n`),
    ]);
    const archivePath = options.archivePath ?? path.join(workDir, `dips-bundle-${arch}-${version}.tar.gz`);
    await writeReproducibleArchive(staging, archivePath);
    await rm(staging, { recursive: true, force: true });
    return { archivePath, version, arch };
}
/**
 * The bundle's version without building it: a hash of its inputs and target. CDK names the asset
 * by it, so a deploy builds and uploads only when it changes.
 */
export async function bundleInputsHash(repoRoot, arch) {
    const hash = createHash('sha256').update(`dips-bundle-v1\0${arch}\0`);
    for (const input of BUNDLE_INPUTS) {
        const full = path.join(repoRoot, input);
        if (!existsSync(full))
            throw new Error(`${full} is missing: run "npm run build" before synthesizing`);
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
async function productionManifest(repoRoot) {
    const manifest = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8'));
    delete manifest.scripts;
    return `${JSON.stringify(manifest, null, 2)}\n`;
}
/** The CPU npm installs for first; the other architectures start from its tree. */
const FIRST_ARCH = 'x64';
/** npm's platform rule (npm-install-checks): a list matches when it names the value, or only excludes others ("!x"). */
function allows(list, value) {
    if (!list || list.length === 0)
        return true;
    if (list.includes(`!${value}`))
        return false;
    return list.includes(value) || list.every((entry) => entry.startsWith('!'));
}
const installsOn = (entry, arch) => allows(entry.os, 'linux') && allows(entry.cpu, arch) && allows(entry.libc, 'glibc');
/**
 * The production `node_modules` for Linux on `arch` with glibc, cached by lock file and target.
 * npm installs it once (`npm ci --omit=dev --os=linux --cpu=x64 --libc=glibc`: install scripts
 * skipped, nothing compiles, SQLite is Node's own; no .bin links, they differ per host). Another
 * architecture's tree is that tree with npm's platform choice redone from the lock file: packages
 * whose os/cpu/libc fit only the first target are removed, those that fit only this one (sharp's
 * @img/sharp-linux-arm64 and its libvips) are fetched with `npm pack` and checked against the lock
 * file's integrity, as npm would. One install instead of one per architecture.
 */
function productionDependencies(repoRoot, cacheDir, arch) {
    // Builds running at once (both architectures, in the tests) share one install.
    const key = `${repoRoot}\0${cacheDir}\0${arch}`;
    if (!installs.has(key)) {
        const installing = installDependencies(repoRoot, cacheDir, arch);
        installs.set(key, installing);
        installing.catch(() => installs.delete(key));
    }
    return installs.get(key);
}
const installs = new Map();
async function installDependencies(repoRoot, cacheDir, arch) {
    const lock = await readFile(path.join(repoRoot, 'package-lock.json'), 'utf8');
    const manifest = await productionManifest(repoRoot);
    const key = createHash('sha256').update(lock).update(manifest).update('linux-glibc v3').digest('hex').slice(0, 16);
    const base = path.join(cacheDir, `dependencies-${key}`);
    const folder = path.join(base, arch);
    if (existsSync(path.join(folder, 'node_modules')))
        return folder;
    await mkdir(cacheDir, { recursive: true });
    if (arch === FIRST_ARCH) {
        await publishOnce(folder, async (partial) => {
            await writeFile(path.join(partial, 'package.json'), manifest);
            await writeFile(path.join(partial, 'package-lock.json'), lock);
            const npm = runNpm(['ci', '--omit=dev', '--ignore-scripts', '--no-bin-links', '--os=linux', `--cpu=${arch}`, '--libc=glibc', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], partial);
            if (npm.status !== 0)
                throw new Error(`npm ci --omit=dev --cpu=${arch} failed in ${partial}:\n${npm.stderr}`);
            // npm's own bookkeeping: it names the install folder, which differs between hosts.
            await rm(path.join(partial, 'node_modules', '.package-lock.json'));
            await removeSourceMaps(path.join(partial, 'node_modules'));
        });
        await removeOtherKeys(cacheDir, base);
        return folder;
    }
    const first = await productionDependencies(repoRoot, cacheDir, FIRST_ARCH);
    const packages = JSON.parse(lock).packages;
    const constrained = Object.entries(packages).filter(([where, entry]) => where !== '' && !entry.dev && (entry.os || entry.cpu || entry.libc));
    await publishOnce(folder, async (partial) => {
        await linkTree(path.join(first, 'node_modules'), path.join(partial, 'node_modules'));
        for (const [where, entry] of constrained) {
            if (installsOn(entry, FIRST_ARCH) && !installsOn(entry, arch))
                await rm(path.join(partial, where), { recursive: true, force: true });
        }
        const wanted = constrained.filter(([, entry]) => installsOn(entry, arch) && !installsOn(entry, FIRST_ARCH));
        const nameOf = (where) => where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length);
        await Promise.all(wanted.map(([where, entry]) => fetchPackage(nameOf(where), entry.version, entry.integrity, path.join(cacheDir, 'packages'), path.join(partial, where))));
    });
    return folder;
}
/**
 * Source maps are a fifth of the production tree (52 of 258 MB, most of them TensorFlow.js' and
 * OpenTelemetry's): the services run without --enable-source-maps, so Node never reads them, and every
 * deploy would upload and every boot download and unpack them.
 */
async function removeSourceMaps(nodeModules) {
    const entries = await readdir(nodeModules, { recursive: true, withFileTypes: true });
    await Promise.all(entries.filter((entry) => entry.isFile() && entry.name.endsWith('.map')).map((entry) => rm(path.join(entry.parentPath, entry.name))));
}
/**
 * Fills `folder` through `fill(partial)` in a sibling folder, then renames it into place: a build
 * interrupted, or two run at once (cdk-assets publishes the architectures in parallel), never
 * leave a half-filled folder behind.
 */
async function publishOnce(folder, fill) {
    await mkdir(path.dirname(folder), { recursive: true });
    const partial = await mkdtempIn(path.dirname(folder), `${path.basename(folder)}.partial-`);
    try {
        await fill(partial);
        await rename(partial, folder).catch((error) => {
            if (!existsSync(folder))
                throw error; // another build got there first: its tree is the same
        });
    }
    finally {
        await rm(partial, { recursive: true, force: true });
    }
}
/** Trees of older lock files are dead weight (about 130 MB per architecture). */
async function removeOtherKeys(cacheDir, keep) {
    for (const entry of await readdir(cacheDir)) {
        if (entry.startsWith('dependencies-') && !entry.includes('.partial-') && entry !== path.basename(keep))
            await rm(path.join(cacheDir, entry), { recursive: true, force: true });
    }
}
/**
 * Copies a tree as hard links (the cache's trees are never written after they are made), or as
 * copies where the file system has no hard links to share.
 */
async function linkTree(source, destination) {
    await mkdir(destination, { recursive: true });
    await Promise.all((await readdir(source, { withFileTypes: true })).map(async (entry) => {
        const from = path.join(source, entry.name);
        const to = path.join(destination, entry.name);
        if (entry.isDirectory())
            return linkTree(from, to);
        if (entry.isSymbolicLink())
            return symlink(await readlink(from), to);
        return link(from, to).catch(() => copyFile(from, to));
    }));
}
async function mkdtempIn(parent, prefix) {
    await mkdir(parent, { recursive: true });
    return mkdtemp(path.join(parent, prefix));
}
//# sourceMappingURL=build-bundle.js.map