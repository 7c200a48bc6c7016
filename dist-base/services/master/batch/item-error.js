import { PermanentTaskError } from '../dispatcher.js';
/** Why one item failed, and whether trying again could help. */
export class ItemError extends Error {
    kind;
    name = 'ItemError';
    constructor(kind, message) {
        super(message);
        this.kind = kind;
    }
}
/** File-system codes that say the path itself is wrong: retrying reads the same wrong path. */
const permanentFileCodes = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'ELOOP', 'ENAMETOOLONG', 'EINVAL']);
/**
 * Permanent: the input is bad (not an image, missing, outside its root, refused by the worker as 4xx),
 * so a retry would fail the same way. Transient: storage timeouts, 5xx and throttling, network errors,
 * workers that did not answer; those are retried with backoff.
 */
export function errorKindOf(error) {
    if (error instanceof ItemError)
        return error.kind;
    if (error instanceof PermanentTaskError)
        return 'permanent';
    const code = error?.code;
    if (code && permanentFileCodes.has(code))
        return 'permanent';
    const status = error?.$metadata?.httpStatusCode;
    if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429)
        return 'permanent';
    return 'transient';
}
//# sourceMappingURL=item-error.js.map