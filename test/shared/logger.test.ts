import { execFile } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const loggerModule = pathToFileURL(path.resolve(import.meta.dirname, '../../dist/services/shared/logger.js')).href;

/** One JSON log line from the built logger in its own process (its destination is stderr, fd 2). */
async function logLine(fields: Record<string, unknown>): Promise<Record<string, unknown>> {
  const script = `import { createLogger } from ${JSON.stringify(loggerModule)};
createLogger('test', 'info', false).info(${JSON.stringify(fields)}, 'start-up');`;
  const { stderr } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
  return JSON.parse(stderr.trim()) as Record<string, unknown>;
}

describe('logger', () => {
  it('redacts every secret under each name it goes by: config fields, the environment, headers', async () => {
    const secrets = {
      config: { token: 'client-secret-1', workerToken: 'worker-secret-2', webhookSecret: 'webhook-secret-3', port: 8080 },
      env: { DIPS_TOKEN: 'client-secret-4', DIPS_WORKER_TOKEN: 'worker-secret-5', DIPS_WEBHOOK_SECRET: 'webhook-secret-6', DIPS_PORT: '8080' },
      request: { headers: { authorization: 'Bearer client-secret-7' } },
    };
    const line = await logLine(secrets);
    expect(JSON.stringify(line)).not.toMatch(/secret-\d/);
    expect(line.config).toEqual({ token: '[redacted]', workerToken: '[redacted]', webhookSecret: '[redacted]', port: 8080 });
    expect(line.env).toEqual({ DIPS_TOKEN: '[redacted]', DIPS_WORKER_TOKEN: '[redacted]', DIPS_WEBHOOK_SECRET: '[redacted]', DIPS_PORT: '8080' });
    expect(line.request).toEqual({ headers: { authorization: '[redacted]' } });
    expect(line.msg).toBe('start-up');
  });
});
