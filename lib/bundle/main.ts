// `npm run bundle`: builds the instances' archive on its own, to inspect it or check it is reproducible.
import { buildBundle, defaultWorkDir } from './build-bundle.js';
import { repoRoot } from './repo-root.js';

const root = repoRoot();
const bundle = await buildBundle({ repoRoot: root, workDir: defaultWorkDir(root) });
process.stdout.write(`${bundle.archivePath}\nsha256 ${bundle.sha256}\n`);
