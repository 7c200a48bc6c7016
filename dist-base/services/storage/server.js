import { once } from 'node:events';
import express from 'express';
import { freeDiskBytes, UploadDisk } from '../master/admission.js';
import { LocalStorage } from '../master/local-storage.js';
import { loadMasterConfig } from '../shared/config.js';
import { errorHandler, notFound } from '../shared/http-error.js';
import { createHttpServer, masterServerLimits } from '../shared/http-server.js';
import { createLogger } from '../shared/logger.js';
import { storageRoutes } from './routes.js';
/**
 * The local storage service: the master's data directory's files behind signed URLs (routes.ts), so
 * that with local storage, as with S3, clients' uploads and downloads do not pass through the master.
 * It holds no state of its own: the files and the signing key are the master's (same data directory),
 * and it takes the master's limits (body rate, connections, disk reserve).
 */
export async function startStorageService(options) {
    const config = loadMasterConfig(options.dataDir ? { dataDir: options.dataDir } : {});
    const logger = createLogger('dips-storage');
    const storage = LocalStorage.inDataDir(config.dataDir);
    const disk = new UploadDisk(config.minFreeDiskBytes, () => freeDiskBytes(config.dataDir));
    const app = express();
    app.disable('x-powered-by');
    app.get('/healthz', (_req, res) => {
        res.json({ status: 'ok' });
    });
    app.use('/storage', storageRoutes(storage, disk));
    app.use(notFound);
    app.use(errorHandler(logger));
    const server = createHttpServer(app, masterServerLimits(config)).listen(options.port, config.host);
    await once(server, 'listening');
    const url = `http://${config.host}:${server.address().port}`;
    logger.info({ url, dataDir: config.dataDir }, 'storage service listening');
    return {
        url,
        server,
        close: async () => {
            server.closeAllConnections();
            await new Promise((resolve) => server.close(() => resolve()));
        },
    };
}
//# sourceMappingURL=server.js.map