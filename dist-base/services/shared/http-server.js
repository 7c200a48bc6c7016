import fs from 'node:fs/promises';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
/**
 * How long an idle keep-alive connection stays open. A client reuses an idle connection without knowing
 * whether the server has just closed it; with Node's default of 5 s, a client slowed by machine load for
 * 5 s between our answer and its next request wrote that request into a closing socket and failed with
 * "other side closed". Clients close their side a little before the timeout the server advertises,
 * and it outlasts a load balancer's 60 s idle timeout, so the server is never the side that closes first.
 */
const keepAliveMs = 65_000;
/**
 * How often Node checks the header and request deadlines. Node's default of 30 s let a slowloris client
 * hold its connection for the header timeout plus up to 30 s; checking every second cuts it within a
 * second of the deadline, for the cost of one walk over the open connections per second.
 */
const deadlineCheckMs = 1_000;
/**
 * A worker's connections come from its master only: one per open task request (a request carries a
 * window of up to 512 tasks, dispatcher.ts) plus a health check, and a task body of at most
 * DIPS_MAX_TASK_BYTES (512 MiB) over a LAN or loopback.
 */
export const workerServerLimits = {
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 300_000,
    minBytesPerSecond: 1024 * 1024,
    maxConnections: 1_024,
};
/**
 * The window over which a body's rate is measured: long enough that a pause of the client's (or of our
 * own disk, which stops us reading) is not mistaken for a slow client, short enough that a trickling
 * connection is gone well before it matters.
 */
const rateWindowMs = 10_000;
/** The master's limits: a request may take as long as its largest accepted body needs at the minimum rate. */
export function masterServerLimits(config) {
    return {
        headersTimeoutMs: config.headersTimeoutMs,
        requestTimeoutMs: config.headersTimeoutMs + Math.ceil((config.maxRequestBytes / config.minUploadBytesPerSecond) * 1000),
        minBytesPerSecond: config.minUploadBytesPerSecond,
        maxConnections: config.maxConnections,
    };
}
/**
 * An HTTP server for a master or worker app with the limits above and the keep-alive policy. Once the
 * server is closing, a connection is ended as soon as its answer is written: server.close() only closes
 * connections idle at the time of the call, and a long keep-alive must not hold a draining worker's
 * exit for a minute.
 */
export function createHttpServer(app, limits) {
    const server = http.createServer({
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        connectionsCheckingInterval: deadlineCheckMs,
        keepAliveTimeout: keepAliveMs,
    }, app);
    server.maxConnections = limits.maxConnections;
    // Node's header timeout starts with the first byte: a connection that sends nothing at all would stay
    // open for good (10,000 of them did), so it gets the same deadline for its first request.
    const firstRequestDeadlines = new WeakMap();
    server.on('connection', (socket) => {
        const deadline = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
        deadline.unref();
        firstRequestDeadlines.set(socket, deadline);
        socket.once('close', () => clearTimeout(deadline));
    });
    server.on('request', (req, res) => {
        clearTimeout(firstRequestDeadlines.get(req.socket));
        res.on('finish', () => {
            if (!server.listening)
                req.socket.end();
        });
        watchBodyRate(req, res, limits.minBytesPerSecond);
    });
    return server;
}
/**
 * Cuts a request whose body trickles in below the minimum rate. It watches the socket's byte count,
 * not the body stream, so the app still reads the body however it likes.
 */
function watchBodyRate(req, res, minBytesPerSecond) {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (!hasBody)
        return;
    const socket = req.socket;
    let seen = socket.bytesRead;
    const timer = setInterval(() => {
        if (req.complete || socket.destroyed)
            return clearInterval(timer);
        const received = socket.bytesRead - seen;
        seen = socket.bytesRead;
        if (received >= (minBytesPerSecond * rateWindowMs) / 1000)
            return;
        clearInterval(timer);
        if (!res.headersSent) {
            res.writeHead(408, { 'content-type': 'application/json', connection: 'close' });
            res.end(JSON.stringify({ error: { code: 'request_too_slow', message: `the request body arrived slower than ${minBytesPerSecond} bytes/s` } }));
        }
        socket.destroySoon();
    }, rateWindowMs);
    timer.unref();
    req.once('end', () => clearInterval(timer));
    res.once('close', () => clearInterval(timer));
}
/**
 * Sends a stream as a response's body. Either side's end ends both: a client that leaves mid-body
 * releases the file behind the stream (`.pipe` would leave it paused and open), and a failing source
 * cuts the response short rather than ending it as if complete.
 */
export async function sendStream(body, res) {
    await pipeline(body, res).catch(() => undefined);
}
/**
 * A result up to this size is read whole with one read and sent with one write; a larger one is
 * streamed in reads of this size. Measured: a 105 KiB result costs the master ~330 µs of CPU read
 * whole against ~500 µs streamed (64 KiB reads, chunked framing); the bound keeps a download's memory
 * at 1 MiB whatever the result.
 */
const wholeReadBytes = 1 << 20;
/** Sends a local file (a result): one open (no separate existence check), its size as Content-Length. */
export async function sendFile(res, file) {
    const handle = await fs.open(file, 'r');
    let streaming = false;
    try {
        const { size } = await handle.stat();
        if (size > wholeReadBytes) {
            res.setHeader('content-length', size);
            // The stream closes the handle when it ends, fails or is destroyed (the client went away).
            streaming = true;
            return await sendStream(handle.createReadStream({ highWaterMark: wholeReadBytes }), res);
        }
        const data = Buffer.allocUnsafe(size);
        const { bytesRead } = await handle.read(data, 0, size, 0);
        res.setHeader('content-length', bytesRead);
        res.end(data.subarray(0, bytesRead));
    }
    finally {
        if (!streaming)
            await handle.close();
    }
}
//# sourceMappingURL=http-server.js.map