import { createHmac, randomUUID } from 'node:crypto';
import { lookup } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import type { DatabaseSync } from 'node:sqlite';
import { openDatabase } from './database.js';
import pRetry, { AbortError } from 'p-retry';
import { HttpError } from '../shared/http-error.js';
import { isPermanentStatus } from '../protocol/errors.js';
import { webhookEvent, webhookRefusal, type WebhookEvent } from '../protocol/newcomer.js';
import { isTerminal } from './job-store.js';
import type { Master } from './master.js';

/** One delivery attempt may take this long before it counts as failed (a receiver should answer at once). */
const attemptTimeoutMs = 10_000;

/** The signature a receiver recomputes: HMAC-SHA256 of "<timestamp>.<body>" with the shared secret, hex. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Why an address may not receive webhooks by default, or undefined when it may: only public unicast
 * addresses. Loopback, private, link-local (the instance metadata service at 169.254.169.254),
 * unique-local, carrier-grade NAT, multicast and reserved ranges are the master's own network, which
 * a client must not reach through it. IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
 */
export function refusedRange(address: string): string | undefined {
  const range = ipaddr.process(address).range();
  return range === 'unicast' ? undefined : range;
}

/** A webhook whose host is, or resolves to, an address refusedRange refuses. */
class RefusedAddress extends Error {
  constructor(host: string, address: string, range: string) {
    super(`webhook host ${host} is ${address}, a ${range} address; webhooks call public addresses only unless DIPS_WEBHOOK_ALLOW_PRIVATE=true`);
  }
}

/**
 * DNS resolution for deliveries that checks what the name resolved to, at each connection: a name
 * checked at submission could resolve elsewhere later (DNS rebinding).
 */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  lookup(hostname, options, (error, address, family) => {
    if (error) return callback(error, address, family);
    const entries = typeof address === 'string' ? [{ address }] : address;
    for (const entry of entries) {
      const range = refusedRange(entry.address);
      if (range) return callback(new RefusedAddress(hostname, entry.address, range), address, family);
    }
    callback(null, address, family);
  });
};

/** The URL's host when it is a literal IP address (URL keeps IPv6 in brackets), else undefined. */
function literalAddress(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return isIP(host) ? host : undefined;
}

/** A delivery not yet made: its URL, and its payload once the job finished (fixed from then on). */
interface PendingDelivery {
  url: string;
  body: string | null;
}

/**
 * Job webhooks: a job submitted with a `webhook` URL has it called once when the job finishes, with
 * `{"event":"job.finished","job":<GET /v1/jobs/{id}>}` signed as signWebhook says (docs in README
 * "Webhooks"). A failed call (network error, timeout, 5xx, 408, 429) is retried with exponential backoff
 * (DIPS_WEBHOOK_RETRY_MS, doubling, DIPS_WEBHOOK_ATTEMPTS in all); other 4xx answers are final, and so is
 * an address refusedRange refuses (unless DIPS_WEBHOOK_ALLOW_PRIVATE). The
 * registrations live in their own SQLite file beside the job store, so a restarted master still calls
 * them (at least once: a crash between a receiver's 2xx and its record can repeat a call).
 */
export class Webhooks {
  private readonly db: DatabaseSync;
  private readonly secret: string | undefined;
  private readonly delivering = new Set<string>();
  /**
   * The pending rows, kept in memory: every job event asks whether its job has one, and a query per event
   * cost more than the rest of this class. The table stays the record a restarted master reads.
   */
  private readonly pending = new Map<string, PendingDelivery>();

  constructor(private readonly master: Master) {
    this.secret = master.config.webhookSecret ?? master.config.token;
    this.db = openDatabase(path.join(master.config.dataDir, 'webhooks.sqlite'));
    this.db.exec(`CREATE TABLE IF NOT EXISTS deliveries (
        job_id TEXT PRIMARY KEY, url TEXT NOT NULL, body TEXT,
        state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT)`);
    master.store.on('job', (jobId) => this.jobChanged(jobId));
    const rows = this.db.prepare("SELECT job_id, url, body FROM deliveries WHERE state = 'pending'").all() as Array<{ job_id: string; url: string; body: string | null }>;
    for (const row of rows) this.pending.set(row.job_id, { url: row.url, body: row.body });
    for (const row of rows) this.jobChanged(row.job_id);
  }

  /** The `webhook` field of a submission, checked before the job is created; undefined when absent. */
  parse(field: string | undefined): string | undefined {
    if (field === undefined || field === '') return undefined;
    const refusal = webhookRefusal(field);
    if (refusal) throw new HttpError(422, 'bad_webhook', refusal);
    if (!this.secret) throw new HttpError(422, 'webhook_unsigned', 'webhooks are signed: the master needs DIPS_WEBHOOK_SECRET (or DIPS_TOKEN) to accept one');
    const refused = this.refusedLiteral(new URL(field));
    if (refused) throw new HttpError(422, 'webhook_not_allowed', refused.message);
    return field;
  }

  /** The refusal of a URL whose host is a literal address out of bounds (names are checked when they resolve). */
  private refusedLiteral(url: URL): RefusedAddress | undefined {
    const address = literalAddress(url);
    const range = address && !this.master.config.webhookAllowPrivate ? refusedRange(address) : undefined;
    return range ? new RefusedAddress(url.hostname, address!, range) : undefined;
  }

  /** One signed POST; resolves with the receiver's status. Redirects are not followed. */
  private post(url: URL, body: string, headers: Record<string, string>): Promise<number> {
    const refused = this.refusedLiteral(url);
    if (refused) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      const request = (url.protocol === 'https:' ? https : http).request(
        url,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          signal: AbortSignal.timeout(attemptTimeoutMs),
          ...(this.master.config.webhookAllowPrivate ? {} : { lookup: publicOnlyLookup }),
        },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      request.once('error', reject);
      request.end(body);
    });
  }

  /** Calls `url` when the job finishes. A job has one webhook: a resumed batch job keeps the one it was made with. */
  register(jobId: string, url: string | undefined): void {
    if (url === undefined) return;
    if (this.db.prepare('INSERT OR IGNORE INTO deliveries (job_id, url) VALUES (?, ?)').run(jobId, url).changes === 0) return;
    this.pending.set(jobId, { url, body: null });
    this.jobChanged(jobId);
  }

  /** A job's state changed: once it is finished, its payload is fixed and delivered. */
  private jobChanged(jobId: string): void {
    const delivery = this.pending.get(jobId);
    if (!delivery) return;
    let body = delivery.body;
    if (body === null) {
      // The summary (counts kept by triggers) tells whether it finished; only then is the whole view read.
      const summary = this.master.store.jobSummary(jobId);
      const job = summary && isTerminal(summary.status) ? this.master.store.getJob(jobId) : summary;
      if (!job) {
        this.db.prepare("UPDATE deliveries SET state = 'failed', last_error = 'the job was deleted' WHERE job_id = ?").run(jobId);
        this.pending.delete(jobId);
        return;
      }
      if (!isTerminal(job.status)) return;
      const event: WebhookEvent = webhookEvent.parse({ event: 'job.finished', job });
      body = JSON.stringify(event);
      // Recorded first: whatever happens next, this job is delivered with this payload and only once started.
      if (this.db.prepare("UPDATE deliveries SET body = ? WHERE job_id = ? AND body IS NULL").run(body, jobId).changes === 0) return;
      delivery.body = body;
    } else if (this.delivering.has(jobId)) {
      return;
    }
    void this.deliver(jobId, delivery.url, body);
  }

  private async deliver(jobId: string, url: string, body: string): Promise<void> {
    this.delivering.add(jobId);
    const { config, logger } = this.master;
    const record = (state: string, error?: string) =>
      this.db.prepare('UPDATE deliveries SET state = ?, attempts = attempts + 1, last_error = ? WHERE job_id = ?').run(state, error ?? null, jobId);
    try {
      await pRetry(
        async () => {
          const timestamp = String(Math.floor(Date.now() / 1000));
          let status: number;
          try {
            status = await this.post(new URL(url), body, {
              'content-type': 'application/json',
              'x-dips-event': 'job.finished',
              'x-dips-delivery': randomUUID(),
              'x-dips-timestamp': timestamp,
              'x-dips-signature': signWebhook(this.secret!, timestamp, body),
            });
          } catch (error) {
            const reason = (error as Error).message;
            record('pending', reason);
            // An address out of bounds stays so: no retry.
            throw error instanceof RefusedAddress ? new AbortError(reason) : new Error(reason);
          }
          if (status >= 200 && status < 300) {
            this.pending.delete(jobId);
            return record('delivered');
          }
          const reason = `the receiver answered ${status}`;
          record('pending', reason);
          throw isPermanentStatus(status) ? new AbortError(reason) : new Error(reason);
        },
        { retries: config.webhookAttempts - 1, minTimeout: config.webhookRetryMs, factor: 2 },
      );
      logger.info({ job: jobId }, 'webhook delivered');
    } catch (error) {
      this.db.prepare("UPDATE deliveries SET state = 'failed' WHERE job_id = ?").run(jobId);
      this.pending.delete(jobId);
      logger.warn({ job: jobId, reason: (error as Error).message }, 'webhook not delivered; giving up');
    } finally {
      this.delivering.delete(jobId);
    }
  }
}
