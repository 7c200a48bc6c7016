import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { closeMasters, hardenedMaster } from './master.js';

afterAll(closeMasters);

/** Opens a connection to the master's port; resolves once connected. */
function connect(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}

const closed = (socket: net.Socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

describe('connection limits', () => {
  it('cuts a slowloris client within the header timeout', async () => {
    const headersTimeoutMs = 1_500;
    const { url } = await hardenedMaster({ headersTimeoutMs });
    const socket = await connect(url);
    socket.on('error', () => undefined); // the server's cut may surface as a reset
    const started = Date.now();
    socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    // One header byte every 200 ms, forever: Node's default would have waited about 84 s.
    const drip = setInterval(() => socket.writable && socket.write('X'), 200);
    await closed(socket);
    clearInterval(drip);
    const cutAfter = Date.now() - started;
    expect(cutAfter).toBeGreaterThanOrEqual(headersTimeoutMs - 100);
    // The deadline is checked every second; the rest is margin for a loaded machine.
    expect(cutAfter).toBeLessThan(headersTimeoutMs + 1_000 + 2_000);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('closes a connection that sends nothing within the header timeout', async () => {
    const headersTimeoutMs = 1_500;
    const { url } = await hardenedMaster({ headersTimeoutMs });
    const socket = await connect(url);
    socket.on('error', () => undefined);
    const started = Date.now();
    await closed(socket);
    expect(Date.now() - started).toBeGreaterThanOrEqual(headersTimeoutMs - 100);
    expect(Date.now() - started).toBeLessThan(headersTimeoutMs + 3_000);
  });

  it('refuses connections beyond DIPS_MAX_CONNECTIONS and serves again once one closes', async () => {
    const { url } = await hardenedMaster({ maxConnections: 4 });
    const held = await Promise.all(Array.from({ length: 4 }, () => connect(url)));
    const extra = await connect(url); // the kernel accepts; the master closes it at once
    extra.on('error', () => undefined);
    await closed(extra);
    held.pop()!.destroy();
    await expect.poll(async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status, { timeout: 5_000 }).toBe(200);
    for (const socket of held) socket.destroy();
  });
});
