import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { MasterOptions } from '../../services/shared/config.js';
import { startMaster, type RunningMaster } from '../../services/master/server.js';

process.env.DIPS_LOG_LEVEL = 'warn';
const running: RunningMaster[] = [];

/** A master as `dips master` starts it (its HTTP server with the limits), on a free port and a data dir of its own. */
export async function hardenedMaster(options: MasterOptions = {}): Promise<RunningMaster & { dataDir: string }> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-hardening-'));
  const master = await startMaster({ port: 0, dataDir, heartbeatTimeoutMs: 2000, ...options });
  running.push(master);
  return { ...master, dataDir };
}

/** Stops every master started by hardenedMaster (call it in afterAll). */
export async function closeMasters(): Promise<void> {
  for (const master of running.splice(0)) await master.close();
}
