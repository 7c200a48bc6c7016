import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebhookCall {
  headers: IncomingMessage['headers'];
  body: string;
}

/**
 * A webhook receiver on loopback (every local address, IPv4 and IPv6 alike): records each call and
 * answers with `status(n)` for the n-th call (1-based; default 204).
 */
export async function startWebhookReceiver(status: (call: number) => number = () => 204) {
  const calls: WebhookCall[] = [];
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    calls.push({ headers: req.headers, body });
    res.writeHead(status(calls.length)).end();
  });
  server.listen(0);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return { port, calls, url: (pathname: string) => `http://127.0.0.1:${port}${pathname}`, close: () => server.close() };
}
