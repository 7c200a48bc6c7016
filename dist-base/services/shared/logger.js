import pino from 'pino';
import pretty from 'pino-pretty';
/** The secret under each name it goes by (config field, header, environment variable), up to three levels deep. */
const secretPaths = ['token', 'workerToken', 'webhookSecret', 'authorization', 'DIPS_TOKEN', 'DIPS_WORKER_TOKEN', 'DIPS_WEBHOOK_SECRET'].flatMap((key) => [key, `*.${key}`, `*.*.${key}`, `*.*.*.${key}`]);
const levels = [...Object.keys(pino.levels.values), 'silent'];
/** The DIPS_LOG_LEVEL value, checked: a typo names the variable and the levels it may take. */
export function logLevelFrom(env = process.env) {
    const level = env.DIPS_LOG_LEVEL || 'info';
    if (!levels.includes(level))
        throw new Error(`invalid configuration: DIPS_LOG_LEVEL is "${level}"; use one of ${levels.join(', ')}`);
    return level;
}
/**
 * Logs on stderr (stdout stays for command output): for people when stderr is a terminal (pino-pretty:
 * one coloured line per event), JSON lines for machines otherwise (files, journald, CloudWatch).
 * Secrets are redacted wherever they could appear: authorization headers, token fields and the
 * secrets' variables in a logged environment.
 */
export function createLogger(name, level = logLevelFrom(), terminal = process.stderr.isTTY === true) {
    const options = { name, level, redact: { paths: secretPaths, censor: '[redacted]' } };
    if (!terminal)
        return pino(options, pino.destination(2));
    return pino(options, pretty({ destination: 2, sync: true, colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss' }));
}
//# sourceMappingURL=logger.js.map