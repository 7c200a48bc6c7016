import { describe, expect, it } from 'vitest';
import { knownSettings, misspeltSettings } from '../../services/shared/config.js';
import { settingsInSources } from '../helpers/settings-in-sources.js';

describe('DIPS_* settings', () => {
  it('are all known: every name the services read is declared in services/shared/config.ts', async () => {
    const found = await settingsInSources(['services']);
    expect(found.length).toBeGreaterThan(50);
    expect(found.filter((name) => !knownSettings.has(name))).toEqual([]);
  });

  it('a likely typo of one is named with the setting meant; a setting, another program\'s name or other variables are not', () => {
    expect(
      misspeltSettings({
        DIPS_WORKER_SLOT: '2',
        DIPS_WORKR_MEMORY_BYTES: '1000000',
        DIPS_HEARTBEAT_TIMEOUT: '5000',
        DIPS_PORTS: '1',
        DIPS_LISTEN_PORT: '1',
        DIPS_MAX_FILES: '10',
        DIPS_LOG_LEVEL: 'warn',
        DIPS_MY_OWN_THING: 'x',
        WORKER_SLOTS: '3',
      }),
    ).toEqual([
      'DIPS_WORKER_SLOT is not a DIPS setting (did you mean DIPS_WORKER_SLOTS?); it has no effect',
      'DIPS_WORKR_MEMORY_BYTES is not a DIPS setting (did you mean DIPS_WORKER_MEMORY_BYTES?); it has no effect',
      'DIPS_HEARTBEAT_TIMEOUT is not a DIPS setting (did you mean DIPS_HEARTBEAT_TIMEOUT_MS?); it has no effect',
      'DIPS_PORTS is not a DIPS setting (did you mean DIPS_PORT?); it has no effect',
    ]);
  });

  it('none of the names DIPS itself uses (the boot script\'s and the bench\'s too) is taken for a typo of a setting', async () => {
    const names = await settingsInSources(['services', 'lib', 'bin', 'bench']);
    expect(names.length).toBeGreaterThan(80);
    expect(misspeltSettings(Object.fromEntries(names.map((name) => [name, '1'])))).toEqual([]);
  });
});
