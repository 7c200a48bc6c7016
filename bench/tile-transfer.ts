/**
 * The tile wire format as the master sees it end to end: bytes sent and received per tile, and the
 * round trip (transfer + worker time) per tile, for a 4K photo tiled at DIPS_TILE_SIZE on a local
 * cluster. Run: `npm run build && node dist/bench/tile-transfer.js` (env TILE_SIZE, default 1024).
 */
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MasterClient } from '../services/cli/client.js';
import { submitFiles } from '../services/cli/submit.js';
import { startLocalCluster } from './cluster.js';
import { corpusDir } from './images.js';
import { scratchDir } from './scratch.js';

const tileSize = process.env.TILE_SIZE ?? '1024';
const pipelines = [[{ op: 'blur', sigma: 2 }], [{ op: 'invert' }]];

const work = await scratchDir('tile-transfer-');
const cluster = await startLocalCluster({
  workers: os.availableParallelism(),
  dataDir: path.join(work, 'data'),
  env: { DIPS_LOG_LEVEL: 'warn', DIPS_TILE_SIZE: tileSize },
});
const value = (text: string, name: string) => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1] ?? 0);
try {
  let before = '';
  for (const pipeline of pipelines) {
    before = await (await fetch(`${cluster.url}/metrics`)).text();
    const started = performance.now();
    const job = await submitFiles(new MasterClient(cluster.url), [path.join(corpusDir, 'twowings-4k.jpg')], { pipeline: JSON.stringify(pipeline), progress: false });
    const seconds = (performance.now() - started) / 1000;
    const after = await (await fetch(`${cluster.url}/metrics`)).text();
    const delta = (name: string) => value(after, name) - value(before, name);
    const tiles = delta('dips_units_completed_total\\{kind="tile"\\}');
    console.log(
      JSON.stringify({
        pipeline,
        status: job.status,
        tileSize: Number(tileSize),
        tiles,
        sentBytesPerTile: Math.round(delta('dips_unit_bytes_total\\{kind="tile",direction="sent"\\}') / tiles),
        receivedBytesPerTile: Math.round(delta('dips_unit_bytes_total\\{kind="tile",direction="received"\\}') / tiles),
        roundTripMsPerTile: Number(((delta('dips_unit_roundtrip_seconds_sum\\{kind="tile"\\}') / tiles) * 1000).toFixed(1)),
        jobSeconds: Number(seconds.toFixed(2)),
      }),
    );
  }
} finally {
  await cluster.stop();
  await rm(work, { recursive: true, force: true });
}
