import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/**
 * How long an idle keep-alive connection stays open. A client reuses an idle connection without knowing
 * whether the server has just closed it; with Node's default of 5 s, a client slowed by machine load for
 * 5 s between our answer and its next request wrote that request into a closing socket and failed with
 * "other side closed". Clients close their side a little before the timeout the server advertises,
 * and it outlasts a load balancer's 60 s idle timeout, so the server is never the side that closes first.
 */
const keepAliveMs = 65_000;

/**
 * Applies the keep-alive policy above to a master or worker HTTP server. Once the server is closing, a
 * connection is ended as soon as its answer is written: server.close() only closes connections idle at
 * the time of the call, and a long keep-alive must not hold a draining worker's exit for a minute.
 */
export function keepConnectionsAlive(server: Server): Server {
  server.keepAliveTimeout = keepAliveMs;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    res.on('finish', () => {
      if (!server.listening) req.socket.end();
    });
  });
  return server;
}
