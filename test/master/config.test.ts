import { describe, expect, it } from 'vitest';
import { loadMasterConfig, loadWorkerConfig } from '../../services/shared/config.js';

describe('configuration', () => {
  it('reads the contract\'s variables, with flags winning over the environment', () => {
    const config = loadMasterConfig({ port: 9000 }, { DIPS_PORT: '8081', DIPS_DATA_DIR: '/srv/dips', DIPS_TILE_SIZE: '512', DIPS_TOKEN: 's3cret' });
    expect(config).toMatchObject({ port: 9000, dataDir: '/srv/dips', tileSize: 512, token: 's3cret', storage: 'local' });
    expect(loadMasterConfig({}, {})).toMatchObject({ port: 8080, dataDir: './.dips-data', token: undefined, tileSize: undefined });
    expect(loadWorkerConfig({}, { DIPS_MASTER_URL: 'http://10.0.0.5:8080' })).toMatchObject({ port: 12345, masterUrl: 'http://10.0.0.5:8080' });
  });

  it('names the variable that is wrong', () => {
    expect(() => loadMasterConfig({}, { DIPS_PORT: 'eighty' })).toThrow(/DIPS_PORT/);
    expect(() => loadMasterConfig({}, { DIPS_TILE_SIZE: '-4' })).toThrow(/DIPS_TILE_SIZE/);
    expect(() => loadMasterConfig({}, { DIPS_STORAGE: 's3' })).toThrow(/DIPS_S3_BUCKET/);
    expect(() => loadWorkerConfig({}, { DIPS_WORKER_ADDRESS: 'not a url' })).toThrow(/DIPS_WORKER_ADDRESS/);
  });

  it('takes a yes/no setting in the words a shell uses, and names the words for one it cannot read', () => {
    for (const [text, value] of [['true', true], ['1', true], ['yes', true], ['on', true], ['false', false], ['0', false], ['no', false], ['off', false]] as const) {
      expect(loadMasterConfig({}, { DIPS_METRICS_PUBLIC: text }).metricsPublic, text).toBe(value);
    }
    expect(() => loadMasterConfig({}, { DIPS_PRESETS_ONLY: 'maybe' })).toThrow('invalid configuration: presetsOnly (DIPS_PRESETS_ONLY): true or false (also 1/0, yes/no, on/off)');
  });
});
