import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import { repoRoot } from './repo-root.js';
/** The pinned runtime (lib/bundle/node-runtime.json): one version, one integrity hash per architecture. */
export async function nodeRuntimePin() {
    return JSON.parse(await readFile(path.join(repoRoot(), 'lib', 'bundle', 'node-runtime.json'), 'utf8'));
}
/** npm's integrity string ("sha512-<base64>") of a file. */
export async function integrityOf(file) {
    const hash = createHash('sha512');
    for await (const chunk of createReadStream(file))
        hash.update(chunk);
    return `sha512-${hash.digest('base64')}`;
}
/** `npm` as the current platform runs it (npm.cmd on Windows needs a shell). */
export function runNpm(args, cwd) {
    const result = spawnSync('npm', args, { cwd, encoding: 'utf8', shell: process.platform === 'win32', maxBuffer: 16 * 1024 * 1024 });
    return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr || result.error?.message || '' };
}
/** Fetches in flight or done, by tarball path: builds running at once share one (the tests build both architectures together). */
const fetches = new Map();
/**
 * The registry tarball of `name@version` in `cacheDir`, fetched with `npm pack` (so npm's cache,
 * registry and proxy settings apply) and checked against `integrity` before anything uses it.
 */
function packedTarball(name, version, integrity, cacheDir) {
    // npm pack names the file after the package: @img/sharp-linux-arm64 -> img-sharp-linux-arm64-<version>.tgz.
    const tarball = path.join(cacheDir, `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`);
    if (!fetches.has(tarball)) {
        const fetching = (async () => {
            await mkdir(cacheDir, { recursive: true });
            if (!existsSync(tarball)) {
                const packed = runNpm(['pack', `${name}@${version}`, '--pack-destination', cacheDir, '--prefer-offline', '--silent'], cacheDir);
                if (packed.status !== 0 || !existsSync(tarball))
                    throw new Error(`npm pack ${name}@${version} failed:\n${packed.stderr}`);
            }
            const actual = await integrityOf(tarball);
            if (actual !== integrity) {
                await rm(tarball, { force: true });
                throw new Error(`${name}@${version} has integrity ${actual}, not the expected ${integrity}: refusing it`);
            }
            return tarball;
        })();
        fetches.set(tarball, fetching);
        fetching.catch(() => fetches.delete(tarball));
    }
    return fetches.get(tarball);
}
/** Unpacks the registry package `name@version` (integrity-checked) into `destination`, as npm lays it out. */
export async function fetchPackage(name, version, integrity, cacheDir, destination) {
    const tarball = await packedTarball(name, version, integrity, cacheDir);
    await rm(destination, { recursive: true, force: true });
    await mkdir(destination, { recursive: true });
    await tar.x({ file: tarball, cwd: destination, strip: 1 });
}
/**
 * The official Linux build of Node for `arch`, from the npm registry's node-linux-<arch> package,
 * checked against the pinned integrity hash before its bin/node is extracted. Cached in
 * `cacheDir`; returns the binary's path.
 */
export async function fetchNodeBinary(arch, cacheDir, pin) {
    const name = `node-linux-${arch}`;
    const binary = path.join(cacheDir, `${name}-${pin.version}`, 'node');
    const tarball = await packedTarball(name, pin.version, pin.integrity[arch], cacheDir).catch((error) => {
        throw new Error(`${error.message} (pinned in lib/bundle/node-runtime.json)`);
    });
    if (!existsSync(binary)) {
        const folder = path.dirname(binary);
        const partial = `${folder}.partial-${process.pid}-${Math.random().toString(36).slice(2)}`;
        await mkdir(partial, { recursive: true });
        await tar.x({ file: tarball, cwd: partial, strip: 2 }, ['package/bin/node']);
        // Another build may have got there first: its binary is the same.
        await rename(partial, folder).catch(() => undefined);
        await rm(partial, { recursive: true, force: true });
    }
    return binary;
}
//# sourceMappingURL=node-runtime.js.map