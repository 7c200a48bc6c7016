import fs from 'node:fs/promises';
import path from 'node:path';
/** File name endings of the formats the master decodes (image-core's input formats). */
const imageExtensions = new Set(['.jpg', '.jpeg', '.jpe', '.png', '.webp', '.tif', '.tiff', '.avif', '.gif']);
/**
 * The files `dips submit` sends, checked before anything is uploaded: a file argument must be a readable
 * file; a directory contributes the images directly inside it (by extension, sorted by name). Every
 * problem names the path, so a typo is reported as such rather than as a failed upload.
 */
export async function collectInputs(args) {
    const files = [];
    const problems = [];
    for (const arg of args) {
        let stat;
        try {
            stat = await fs.stat(arg);
        }
        catch (error) {
            problems.push(`${arg}: ${error.code === 'ENOENT' ? 'no such file or directory' : error.message}`);
            continue;
        }
        if (stat.isDirectory()) {
            const images = (await fs.readdir(arg, { withFileTypes: true }))
                .filter((entry) => entry.isFile() && imageExtensions.has(path.extname(entry.name).toLowerCase()))
                .map((entry) => path.join(arg, entry.name))
                .sort();
            if (images.length === 0)
                problems.push(`${arg}: a directory with no image files (${[...imageExtensions].join(' ')})`);
            files.push(...images);
        }
        else if (!stat.isFile()) {
            problems.push(`${arg}: not a regular file`);
        }
        else {
            try {
                await fs.access(arg, fs.constants.R_OK);
                files.push(arg);
            }
            catch {
                problems.push(`${arg}: not readable (permission denied)`);
            }
        }
    }
    return { files, problems };
}
/** Splits the files into jobs of at most `size` (the master's DIPS_MAX_FILES). */
export function chunk(items, size) {
    const chunks = [];
    for (let start = 0; start < items.length; start += size)
        chunks.push(items.slice(start, start + size));
    return chunks;
}
//# sourceMappingURL=inputs.js.map