import express from 'express';
import { z } from 'zod';
import { requireToken } from '../shared/auth.js';
import { HttpError } from '../shared/http-error.js';
import { sendStream } from '../shared/http-server.js';
import { heartbeat } from '../protocol/tasks.js';
/**
 * The routes only workers use, behind the worker credential (DIPS_WORKER_TOKEN): registration and
 * heartbeats, leaving, and the bytes the master serves to workers that cannot reach storage directly.
 * A client token opens none of them.
 */
export function workerRoutes(master) {
    const { registry, blobs, admission } = master;
    const routes = express.Router();
    routes.use(['/workers', '/blobs'], requireToken(master.workerCredential, 'DIPS_WORKER_TOKEN'));
    routes.put('/workers/:id', express.json({ limit: '64kb' }), async (req, res) => {
        const parsed = heartbeat.safeParse(req.body);
        if (!parsed.success)
            throw new HttpError(400, 'bad_heartbeat', `heartbeat body: ${z.prettifyError(parsed.error)}`);
        const known = registry.get(req.params.id);
        // The address is checked when it is new or changes; a steady heartbeat costs no lookup.
        if (known?.address !== parsed.data.address.replace(/\/+$/, '')) {
            const refusal = await admission.refusal(parsed.data.address, req.socket.remoteAddress);
            if (refusal)
                throw new HttpError(403, 'worker_address_refused', refusal);
        }
        const record = registry.heartbeat(req.params.id, parsed.data);
        const answer = { id: record.id, state: record.state };
        res.json(answer);
    });
    routes.delete('/workers/:id', (req, res) => {
        registry.remove(req.params.id);
        res.status(204).end();
    });
    routes.get('/blobs/:lease/:direction', async (req, res) => {
        const blob = blobs.get(req.params.lease, req.params.direction);
        if (!blob?.read)
            throw new HttpError(404, 'no_blob', `nothing to read at ${req.path} (the lease is over)`);
        const stream = await blob.read();
        res.type('application/octet-stream');
        await sendStream(stream, res);
    });
    routes.put('/blobs/:lease/:direction', async (req, res) => {
        const blob = blobs.get(req.params.lease, req.params.direction);
        if (!blob?.write) {
            req.resume();
            throw new HttpError(404, 'no_blob', `nothing to write at ${req.path} (the lease is over)`);
        }
        await blob.write(req);
        res.status(204).end();
    });
    return routes;
}
//# sourceMappingURL=worker-routes.js.map