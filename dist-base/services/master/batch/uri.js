import path from 'node:path';
import { HttpError } from '../../shared/http-error.js';
export function formatUri(location) {
    if (location.scheme === 'upload')
        return `upload://${location.session}${location.index === undefined ? '' : `/${location.index}`}`;
    return location.scheme === 's3' ? `s3://${location.bucket}/${location.key}` : `file://${location.path}`;
}
/**
 * Parses `s3://bucket/key` or `file:///absolute/path`. A `..` or `.` segment is refused outright (also
 * percent-encoded): URL parsing would silently resolve it, and no resolved form is what the user wrote.
 */
export function parseUri(text, what = 'URI') {
    const upload = /^upload:\/\/([0-9a-f-]{36})(?:\/(\d{1,9}))?$/.exec(text);
    if (upload)
        return { scheme: 'upload', session: upload[1], ...(upload[2] === undefined ? {} : { index: Number(upload[2]) }) };
    const s3 = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(text);
    const file = /^file:\/\/(\/.*)$/.exec(text);
    const rest = s3 ? (s3[2] ?? '') : file?.[1];
    if (rest === undefined)
        throw new HttpError(400, 'bad_uri', `${what} ${JSON.stringify(text)} is not an s3://bucket/key or file:///absolute/path URI`);
    let decoded;
    try {
        decoded = decodeURIComponent(rest);
    }
    catch {
        throw new HttpError(400, 'bad_uri', `${what} ${JSON.stringify(text)} has a malformed percent-escape`);
    }
    if (decoded.split('/').some((segment) => segment === '..' || segment === '.') || decoded.includes('\0')) {
        throw new HttpError(403, 'path_traversal', `${what} ${JSON.stringify(text)} contains a "." or ".." segment: no path may escape its root`);
    }
    if (s3)
        return { scheme: 's3', bucket: s3[1], key: decoded };
    return { scheme: 'file', path: path.posix.normalize(decoded) };
}
/** A root as a directory-like prefix: `s3://b/in` covers `s3://b/in/x` but not `s3://b/inx`. */
function asDirectory(location) {
    if (location.scheme === 's3')
        return { ...location, key: location.key === '' || location.key.endsWith('/') ? location.key : `${location.key}/` };
    return { ...location, path: location.path.endsWith('/') ? location.path : `${location.path}/` };
}
/** True when `inner` is `root` itself or lies under it. */
export function isUnder(inner, root) {
    // An upload session is under no root: only a job created from it reads it (batch/inputs.ts ownUpload).
    if (root.scheme === 'upload')
        return false;
    const dir = asDirectory(root);
    if (inner.scheme === 's3' && dir.scheme === 's3') {
        return inner.bucket === dir.bucket && (inner.key.startsWith(dir.key) || `${inner.key}/` === dir.key);
    }
    if (inner.scheme === 'file' && dir.scheme === 'file')
        return inner.path.startsWith(dir.path) || `${inner.path}/` === dir.path;
    return false;
}
/** The roots a job may read (DIPS_SOURCES) or write (DIPS_DESTINATIONS). */
export class Roots {
    variable;
    roots;
    constructor(variable, list) {
        this.variable = variable;
        this.roots = list
            .split(',')
            .map((entry) => entry.trim())
            .filter((entry) => entry !== '')
            .map((entry) => parseUri(entry, `${variable} entry`));
    }
    /** The root holding the location, or a 403 naming the roots that are allowed. */
    rootOf(location, what) {
        const root = this.roots.find((candidate) => isUnder(location, candidate));
        if (root)
            return root;
        const allowed = this.roots.length === 0 ? `${this.variable} is empty, so none is allowed` : `allowed: ${this.variable}=${this.roots.map(formatUri).join(',')}`;
        throw new HttpError(403, 'outside_root', `${what} ${formatUri(location)} is not under a root of ${this.variable} (${allowed})`);
    }
}
/** The path of `inner` relative to the folder-like `prefix` (no leading slash). */
export function relativeTo(inner, prefix) {
    if (inner.scheme === 'upload' || prefix.scheme === 'upload')
        return formatUri(inner);
    const dir = asDirectory(prefix);
    const full = inner.scheme === 's3' ? inner.key : inner.path;
    const base = dir.scheme === 's3' ? dir.key : dir.path;
    return full.startsWith(base) ? full.slice(base.length) : path.posix.basename(full);
}
/** `prefix` (a folder) joined with a relative path. */
export function joinUnder(prefix, relative) {
    if (prefix.scheme === 'upload')
        throw new HttpError(400, 'bad_uri', `${formatUri(prefix)} is an upload session, not a folder`);
    const dir = asDirectory(prefix);
    return dir.scheme === 's3' ? { ...dir, key: `${dir.key}${relative}` } : { ...dir, path: `${dir.path}${relative}` };
}
//# sourceMappingURL=uri.js.map