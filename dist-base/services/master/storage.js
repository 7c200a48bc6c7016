const keyPattern = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
/** Guards every storage key: only generated names, never "..", never absolute. */
export function checkKey(key) {
    if (!keyPattern.test(key) || key.split('/').some((part) => part === '..' || part === '.')) {
        throw new Error(`invalid storage key ${JSON.stringify(key)}`);
    }
    return key;
}
/**
 * How long a presigned URL stays valid: long enough for a task that waits behind a full worker queue
 * and then moves a large image, short enough that a leaked URL is soon useless.
 */
export const presignedSeconds = 15 * 60;
//# sourceMappingURL=storage.js.map