import { once } from 'node:events';
import { loadMasterConfig } from '../shared/config.js';
import { createHttpServer, masterServerLimits } from '../shared/http-server.js';
import { createLogger } from '../shared/logger.js';
import { createApp } from './app.js';
import { Master } from './master.js';
/** Starts the master: state from the data dir (resuming unfinished jobs), then listens. */
export async function startMaster(options = {}, deps = {}) {
    const config = loadMasterConfig(options);
    const logger = createLogger('dips-master');
    const master = await Master.create(config, logger, deps);
    const server = createHttpServer(createApp(master), masterServerLimits(config)).listen(config.port, config.host);
    await once(server, 'listening');
    const { port } = server.address();
    const url = `http://${config.host}:${port}`;
    logger.info({ url, dataDir: config.dataDir, storage: config.storage, auth: config.token !== undefined }, 'master listening');
    return {
        master,
        server,
        url,
        close: async () => {
            master.close();
            server.closeAllConnections();
            await new Promise((resolve) => server.close(() => resolve()));
        },
    };
}
//# sourceMappingURL=server.js.map