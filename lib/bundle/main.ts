// `npm run bundle [x64|arm64] [archive path]`: builds the instances' archive on its own, to inspect it or check it is reproducible.
import { buildBundle, defaultWorkDir } from './build-bundle.js';
import { repoRoot } from './repo-root.js';
import { BUNDLE_ARCHS, type BundleArch } from './target.js';

const arch = (process.argv[2] ?? 'x64') as BundleArch;
if (!BUNDLE_ARCHS.includes(arch)) throw new Error(`unknown architecture "${arch}": one of ${BUNDLE_ARCHS.join(', ')}`);
const root = repoRoot();
const archivePath = process.argv[3];
const bundle = await buildBundle({ repoRoot: root, workDir: defaultWorkDir(root), arch, ...(archivePath ? { archivePath } : {}) });
process.stdout.write(`${bundle.archivePath}\nsha256 ${bundle.sha256}\n`);
