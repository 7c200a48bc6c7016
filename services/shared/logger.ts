import pino, { type Logger } from 'pino';

export type { Logger };

/** The secret under each name it goes by (config field, header, environment variable), up to three levels deep. */
const secretPaths = ['token', 'authorization', 'DIPS_TOKEN'].flatMap((key) => [key, `*.${key}`, `*.*.${key}`, `*.*.*.${key}`]);

/**
 * Structured JSON logs on stderr (stdout stays for command output). Secrets are redacted wherever
 * they could appear: authorization headers, token fields and DIPS_TOKEN in a logged environment.
 */
export function createLogger(name: string, level = process.env.DIPS_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: secretPaths, censor: '[redacted]' },
    },
    pino.destination(2),
  );
}
