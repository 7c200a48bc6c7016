import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
/**
 * The repository root: the nearest folder above this module holding package.json. The same
 * answer whether the code runs from lib/ (tests) or from dist/lib/ (the compiled CDK app).
 */
export function repoRoot() {
    let folder = path.dirname(fileURLToPath(import.meta.url));
    while (!existsSync(path.join(folder, 'package.json'))) {
        const parent = path.dirname(folder);
        if (parent === folder)
            throw new Error('no package.json above lib/bundle: cannot find the repository root');
        folder = parent;
    }
    return folder;
}
//# sourceMappingURL=repo-root.js.map