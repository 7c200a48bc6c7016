import { createHash } from 'node:crypto';
import path from 'node:path';
import { extensionFor } from '../../image-core/encode.js';
import { formatUri, joinUnder, parseUri } from './uri.js';
/** File extensions whose format the output keeps when the job names none. */
const formatByExtension = {
    '.jpg': 'jpeg',
    '.jpeg': 'jpeg',
    '.png': 'png',
    '.webp': 'webp',
    '.tif': 'tiff',
    '.tiff': 'tiff',
    '.avif': 'avif',
    '.gif': 'png',
};
/**
 * The seam between batch jobs and the data path: an item resolves to where to read and where to
 * write, named as the contract says: `<prefix><name without extension>.<ext>`, and with sizes
 * `<prefix><name without extension>-<size>w.<ext>`.
 */
export function resolveItem(spec, item) {
    const source = parseUri(item.source, 'input');
    const output = spec.output;
    if (!output)
        return { source, outputs: [] };
    const prefix = parseUri(output.prefix, 'output prefix');
    const stem = item.name.slice(0, item.name.length - path.posix.extname(item.name).length) || item.name;
    const guessed = formatByExtension[path.posix.extname(item.name).toLowerCase()];
    const formats = output.formats ?? [output.format ?? spec.format ?? guessed];
    const sizes = output.sizes ?? [undefined];
    const quality = output.quality ?? spec.quality;
    const outputs = [];
    for (const width of sizes) {
        for (const format of formats) {
            // Without a format the input's is kept; its extension is only known for the usual names.
            const extension = format ? extensionFor(format) : (path.posix.extname(item.name).slice(1) || 'out');
            outputs.push({
                location: joinUnder(prefix, `${stem}${width === undefined ? '' : `-${width}w`}.${extension}`),
                ...(format ? { format } : {}),
                ...(quality ? { quality } : {}),
                ...(width === undefined ? {} : { width }),
            });
        }
    }
    return { source, outputs };
}
/**
 * The content key of an item's results: SHA-256 over the input's URI and version (S3 ETag, or size +
 * mtime + inode of a file), the canonical pipeline (defaults filled in) and every output's URI, format,
 * quality and width. Same key, same bytes: a resubmission skips an output whose recorded key matches
 * and whose file is still the one that was written.
 */
export function contentKey(input, pipeline, outputs) {
    const described = outputs.map((output) => [formatUri(output.location), output.format ?? null, output.quality ?? null, output.width ?? null]);
    return createHash('sha256').update(JSON.stringify(['dips-batch/1', input.uri, input.fingerprint, pipeline, described])).digest('hex');
}
//# sourceMappingURL=locations.js.map