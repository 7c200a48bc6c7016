import { createHmac, randomUUID } from 'node:crypto';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pRetry, { AbortError } from 'p-retry';
import { z } from 'zod';
import { HttpError } from '../shared/http-error.js';
import { isPermanentStatus } from '../protocol/errors.js';
import { webhookEvent, type WebhookEvent } from '../protocol/newcomer.js';
import { isTerminal } from './job-store.js';
import type { Master } from './master.js';

/** One delivery attempt may take this long before it counts as failed (a receiver should answer at once). */
const attemptTimeoutMs = 10_000;
const webhookUrl = z.url({ protocol: /^https?$/ });

/** The signature a receiver recomputes: HMAC-SHA256 of "<timestamp>.<body>" with the shared secret, hex. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
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
 * (DIPS_WEBHOOK_RETRY_MS, doubling, DIPS_WEBHOOK_ATTEMPTS in all); other 4xx answers are final. The
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
    this.db = new DatabaseSync(path.join(master.config.dataDir, 'webhooks.sqlite'));
    this.db.exec(`PRAGMA journal_mode = WAL;
      CREATE TABLE IF NOT EXISTS deliveries (
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
    if (!webhookUrl.safeParse(field).success) throw new HttpError(422, 'bad_webhook', `webhook "${field.slice(0, 200)}" is not an http(s) URL`);
    if (!this.secret) throw new HttpError(422, 'webhook_unsigned', 'webhooks are signed: the master needs DIPS_WEBHOOK_SECRET (or DIPS_TOKEN) to accept one');
    return field;
  }

  register(jobId: string, url: string | undefined): void {
    if (url === undefined) return;
    this.db.prepare('INSERT INTO deliveries (job_id, url) VALUES (?, ?)').run(jobId, url);
    this.pending.set(jobId, { url, body: null });
    this.jobChanged(jobId);
  }

  /** A job's state changed: once it is finished, its payload is fixed and delivered. */
  private jobChanged(jobId: string): void {
    const delivery = this.pending.get(jobId);
    if (!delivery) return;
    let body = delivery.body;
    if (body === null) {
      const job = this.master.store.getJob(jobId);
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
          let response: Response;
          try {
            response = await fetch(url, {
              method: 'POST',
              body,
              headers: {
                'content-type': 'application/json',
                'x-dips-event': 'job.finished',
                'x-dips-delivery': randomUUID(),
                'x-dips-timestamp': timestamp,
                'x-dips-signature': signWebhook(this.secret!, timestamp, body),
              },
              signal: AbortSignal.timeout(attemptTimeoutMs),
              redirect: 'manual',
            });
          } catch (error) {
            const reason = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
            record('pending', reason);
            throw new Error(reason);
          }
          await response.body?.cancel();
          if (response.ok) {
            this.pending.delete(jobId);
            return record('delivered');
          }
          const reason = `the receiver answered ${response.status}`;
          record('pending', reason);
          throw isPermanentStatus(response.status) ? new AbortError(reason) : new Error(reason);
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
