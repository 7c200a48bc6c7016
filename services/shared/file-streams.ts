/**
 * How much of a file moves at once when it is streamed to or from a socket: the read size of a file being
 * sent, the buffer of a file being received. Node's defaults, 64 KiB reads (a Blob body) and a 16 KiB
 * write buffer (which pauses the socket after almost every chunk), made an 11.7 MB upload to the storage
 * service take about 1.5x the time and its CPU, and the same download about 1.3x the time and 1.5x the
 * client's CPU (docs/performance.md, fourteenth round). A stream holds at most this much beyond its chunk.
 */
export const fileStreamBytes = 1 << 20;
