import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout stays for command output). Secrets are redacted wherever
 * they could appear: authorization headers and token fields.
 */
export function createLogger(name: string, level = process.env.DIPS_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: ['token', '*.token', 'authorization', '*.authorization', '*.headers.authorization'], censor: '[redacted]' },
    },
    pino.destination(2),
  );
}
