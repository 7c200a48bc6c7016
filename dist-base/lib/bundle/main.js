// `npm run bundle [x64|arm64] [archive path]`: builds the instances' archive on its own, to inspect it or
// check it is reproducible. CDK's asset publisher runs it as `main.js <arch> --version <hash>` (see
// lib/bundle-release.ts): it then checks the inputs still have that version, reuses an archive of
// that version already built, and prints only the archive's path, which is what cdk-assets reads.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildBundle, bundleInputsHash, defaultWorkDir } from './build-bundle.js';
import { repoRoot } from './repo-root.js';
import { BUNDLE_ARCHS } from './target.js';
const { positionals, values } = parseArgs({ allowPositionals: true, options: { version: { type: 'string' } } });
const arch = (positionals[0] ?? 'x64');
if (!BUNDLE_ARCHS.includes(arch))
    throw new Error(`unknown architecture "${arch}": one of ${BUNDLE_ARCHS.join(', ')}`);
const root = repoRoot();
const workDir = defaultWorkDir(root);
if (values.version !== undefined) {
    const current = await bundleInputsHash(root, arch);
    if (current !== values.version) {
        throw new Error(`the ${arch} bundle's inputs changed since the stack was synthesized (${values.version}, now ${current}): run cdk deploy again`);
    }
    const built = path.join(workDir, `dips-bundle-${arch}-${current}.tar.gz`);
    process.stdout.write(`${existsSync(built) ? built : (await buildBundle({ repoRoot: root, workDir, arch })).archivePath}\n`);
}
else {
    const bundle = await buildBundle({ repoRoot: root, workDir, arch, ...(positionals[1] ? { archivePath: positionals[1] } : {}) });
    process.stdout.write(`${bundle.archivePath}\nversion ${bundle.version}\n`);
}
//# sourceMappingURL=main.js.map