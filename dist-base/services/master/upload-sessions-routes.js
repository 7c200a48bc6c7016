import express from 'express';
import { z } from 'zod';
import { completeBody, uploadSessionBody } from '../protocol/uploads.js';
import { HttpError } from '../shared/http-error.js';
import { itemBudget } from './batch/runner.js';
import { reachableBy } from './client-urls.js';
/** What sessions accept, opening one and completing its multipart files: behind the client token like every /v1 route. */
export function uploadSessionRoutes(master) {
    const router = express.Router();
    // A declared file is a name and a size: 100 files of long names stay far below this.
    const json = express.json({ limit: '1mb' });
    router.get('/uploads', (_req, res) => {
        const { maxFiles, maxUploadBytes, uploadPartBytes } = master.config;
        const terms = { maxFiles, maxFileBytes: maxUploadBytes, partBytes: uploadPartBytes, whole: itemBudget(master.config) };
        res.json(terms);
    });
    router.post('/uploads', json, async (req, res) => {
        const parsed = uploadSessionBody.safeParse(req.body);
        if (!parsed.success)
            throw new HttpError(400, 'bad_upload_session', `upload session body: ${z.prettifyError(parsed.error)}`);
        const created = await master.uploads.create(parsed.data);
        const session = { ...created, files: created.files.map((file) => ({ ...file, parts: file.parts.map((part) => ({ ...part, url: reachableBy(req, part.url) })) })) };
        res.status(201).location(`/v1/uploads/${session.id}`).json(session);
    });
    router.post('/uploads/:id/files/:index/complete', json, async (req, res) => {
        const parsed = completeBody.safeParse(req.body);
        if (!parsed.success)
            throw new HttpError(400, 'bad_completion', `completion body: ${z.prettifyError(parsed.error)}`);
        res.json(await master.uploads.complete(req.params.id, fileIndex(req.params.index), parsed.data.etags));
    });
    return router;
}
function fileIndex(text) {
    const index = Number(text);
    if (!Number.isInteger(index) || index < 0)
        throw new HttpError(404, 'upload_file_not_found', `"${text}" is not a file index`);
    return index;
}
//# sourceMappingURL=upload-sessions-routes.js.map