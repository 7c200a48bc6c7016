import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { loadMasterConfig, type MasterOptions } from '../shared/config.js';
import { createHttpServer, masterServerLimits } from '../shared/http-server.js';
import { createLogger } from '../shared/logger.js';
import { createApp } from './app.js';
import { Master, type MasterDeps } from './master.js';

export interface RunningMaster {
  master: Master;
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Starts the master: state from the data dir (resuming unfinished jobs), then listens. */
export async function startMaster(options: MasterOptions = {}, deps: MasterDeps = {}): Promise<RunningMaster> {
  const config = loadMasterConfig(options);
  const logger = createLogger('dips-master');
  const master = await Master.create(config, logger, deps);
  const server = createHttpServer(createApp(master), masterServerLimits(config)).listen(config.port, config.host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host}:${port}`;
  logger.info({ url, dataDir: config.dataDir, storage: config.storage, auth: config.token !== undefined }, 'master listening');
  return {
    master,
    server,
    url,
    close: async () => {
      master.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
