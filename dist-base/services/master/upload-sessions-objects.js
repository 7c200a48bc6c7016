import { ItemError } from './batch/item-error.js';
import { formatUri } from './batch/uri.js';
import { stagedKey } from './upload-sessions.js';
/**
 * The files of upload sessions as batch inputs (`upload://<session>/<index>`): read-only objects of
 * the master's own storage. A worker reaches them as it reaches uploaded images: presigned GET (S3),
 * the file itself (co-located), or a blob the master streams.
 */
export class StagedObjects {
    sessions;
    storage;
    constructor(sessions, storage) {
        this.sessions = sessions;
        this.storage = storage;
    }
    /** From the session's row: the size was checked when the job was created, so no storage call is needed. */
    async stat(location) {
        const { session, index } = stagedOf(location);
        const file = this.sessions.files(session)[index];
        return file && { fingerprint: file.etag ?? `${session}/${index}:${file.size}`, size: file.size };
    }
    async readStream(location) {
        const { session, index } = stagedOf(location);
        return this.storage.getStream(stagedKey(session, index));
    }
    async write(location) {
        throw new ItemError('permanent', `${formatUri(location)} is an uploaded input; results cannot be written there`);
    }
    /** The session's files in order, named as the client declared them. */
    async *list(prefix, cursor) {
        if (prefix.scheme !== 'upload')
            throw new Error(`${formatUri(prefix)} is not an upload session`);
        const files = this.sessions.files(prefix.session);
        for (let index = cursor === undefined ? 0 : Number(cursor); index < files.length; index++) {
            yield { location: { scheme: 'upload', session: prefix.session, index }, name: files[index].name, cursor: String(index + 1) };
        }
    }
    /**
     * A presigned GET is pinned with If-Match to the ETag the job's creation checked: a presigned PUT of
     * the session is still valid then, and an object replaced after the check is not processed (412).
     * Local files cannot change: the master refuses PUTs to a session that became a job.
     */
    async reach(location, access, worker) {
        if (!('get' in access))
            return this.write(location);
        const { session, index } = stagedOf(location);
        const key = stagedKey(session, index);
        const direct = await this.storage.locate(key, 'get', worker);
        const etag = this.sessions.files(session)[index]?.etag;
        if (direct?.via === 'url' && etag)
            return { direct: { ...direct, headers: { ...direct.headers, 'if-match': etag } } };
        return direct ? { direct } : { served: { read: () => this.storage.getStream(key) } };
    }
    async writtenVersion(location) {
        return this.write(location);
    }
}
function stagedOf(location) {
    if (location.scheme !== 'upload' || location.index === undefined)
        throw new Error(`${formatUri(location)} is not a file of an upload session`);
    return { session: location.session, index: location.index };
}
//# sourceMappingURL=upload-sessions-objects.js.map