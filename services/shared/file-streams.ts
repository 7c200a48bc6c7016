/**
 * How much of a file moves at once when it is streamed to or from a socket: the read size of a file being
 * sent, the buffer of a file being received. With Node's defaults, 64 KiB reads (a Blob body) and a 16 KiB
 * write buffer (which pauses the socket after almost every chunk), an 11.7 MB upload or download on
 * loopback took about twice the time and more CPU on both sides (`node dist/bench/file-streams.js`;
 * docs/performance.md, fourteenth round). A stream holds at most this much beyond its chunk.
 */
export const fileStreamBytes = 1 << 20;
