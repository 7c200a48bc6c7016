import { createInterface } from 'node:readline';
import { parse as parseCsv } from 'csv-parse';
import { z } from 'zod';
import { HttpError } from '../../shared/http-error.js';
import { formatUri, isUnder, parseUri, relativeTo } from './uri.js';
const manifestLine = z.object({ url: z.string() });
/**
 * Streams the inputs of a job from where `cursor` left off: a prefix listed page by page, a list of
 * URLs, or a manifest read line by line. Nothing is held beyond the page being read.
 */
export async function* listInputs(inputs, deps, cursor) {
    if ('prefix' in inputs) {
        const prefix = parseUri(inputs.prefix, 'input prefix');
        for await (const object of deps.stores.for(prefix).list(prefix, cursor)) {
            // Results written under the input prefix are not inputs of the next run.
            if (deps.exclude && isUnder(object.location, deps.exclude))
                continue;
            const uri = formatUri(object.location);
            yield { uri, name: relativeTo(object.location, prefix), cursor: object.cursor, ...(object.version ? { version: object.version } : {}) };
        }
        return;
    }
    if ('upload' in inputs) {
        const session = { scheme: 'upload', session: inputs.upload };
        for await (const object of deps.stores.for(session).list(session, cursor)) {
            yield { uri: formatUri(object.location), name: object.name ?? relativeTo(object.location, session), cursor: object.cursor };
        }
        return;
    }
    const start = cursor === undefined ? 0 : Number(cursor);
    const named = (uri, position) => ({ uri, name: nameUnderRoot(uri, deps.sources), cursor: String(position) });
    if ('urls' in inputs) {
        for (let index = start; index < inputs.urls.length; index++)
            yield named(inputs.urls[index], index + 1);
        return;
    }
    const manifest = parseUri(inputs.manifest, 'manifest');
    let position = 0;
    for await (const uri of manifestUrls(await deps.stores.for(manifest).readStream(manifest), inputs.manifest)) {
        position += 1;
        if (position > start)
            yield named(uri, position);
    }
}
/**
 * True when the item reads a file of the job's own upload session: the master's staging area, which no
 * source root covers (DIPS_SOURCES governs the storage a job names, not what its client uploaded).
 */
export function ownUpload(inputs, source) {
    return 'upload' in inputs && source.scheme === 'upload' && source.session === inputs.upload;
}
/** The URLs of a `.jsonl` manifest (`{"url": ...}` per line) or a `.csv` one (a `url` column). */
async function* manifestUrls(stream, name) {
    if (/\.csv$/i.test(name)) {
        for await (const record of stream.pipe(parseCsv({ columns: true, skip_empty_lines: true, trim: true }))) {
            if (record.url === undefined)
                throw new HttpError(422, 'bad_manifest', `manifest ${name} has no "url" column`);
            yield record.url;
        }
        return;
    }
    let line = 0;
    for await (const text of createInterface({ input: stream, crlfDelay: Infinity })) {
        line += 1;
        if (text.trim() === '')
            continue;
        let parsed;
        try {
            parsed = manifestLine.safeParse(JSON.parse(text));
        }
        catch {
            parsed = undefined;
        }
        if (!parsed?.success)
            throw new HttpError(422, 'bad_manifest', `manifest ${name} line ${line} is not a JSON object with a "url"`);
        yield parsed.data.url;
    }
}
/** A URL's name: its path under the source root that allows it, or its last segment when none does. */
function nameUnderRoot(uri, sources) {
    try {
        const location = parseUri(uri);
        const root = sources.roots.find((candidate) => isUnder(location, candidate));
        return root ? relativeTo(location, root) : relativeTo(location, location);
    }
    catch {
        return uri;
    }
}
//# sourceMappingURL=inputs.js.map