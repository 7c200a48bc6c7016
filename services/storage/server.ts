import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { diskLedgerFile, freeDiskBytes, UploadDisk } from '../master/admission.js';
import { LocalStorage } from '../master/local-storage.js';
import { loadMasterConfig } from '../shared/config.js';
import { errorHandler, notFound } from '../shared/http-error.js';
import { createHttpServer, masterServerLimits } from '../shared/http-server.js';
import { createLogger } from '../shared/logger.js';
import { storageRoutes } from './routes.js';

export interface StorageServiceOptions {
  dataDir?: string;
  /** 0 picks a free port. */
  port: number;
}

export interface RunningStorageService {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/**
 * The local storage service: the master's data directory's files behind signed URLs (routes.ts), so
 * that with local storage, as with S3, clients' uploads and downloads do not pass through the master.
 * It holds no state of its own: the files and the signing key are the master's (same data directory),
 * and it takes the master's limits (body rate, connections, disk reserve).
 */
export async function startStorageService(options: StorageServiceOptions): Promise<RunningStorageService> {
  const config = loadMasterConfig(options.dataDir ? { dataDir: options.dataDir } : {});
  const logger = createLogger('dips-storage');
  const storage = LocalStorage.inDataDir(config.dataDir);
  const disk = new UploadDisk(config.minFreeDiskBytes, () => freeDiskBytes(config.dataDir), Date.now, diskLedgerFile(config.dataDir));
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
  const url = `http://${config.host}:${(server.address() as AddressInfo).port}`;
  logger.info({ url, dataDir: config.dataDir }, 'storage service listening');
  return {
    url,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      disk.close();
    },
  };
}
