import sharp, { type Sharp } from 'sharp';
import { encodePipeline, type EncodeOptions } from './encode.js';
import { rawDescriptor, type Channels, type RawImage } from './raw-image.js';

/**
 * A baseline JPEG encoded in parallel, one band of rows per task (docs/tiling.md, "JPEG output by restart
 * intervals"). A scan with a restart marker every R MCUs is the concatenation of independently encoded
 * pieces: an encoder ends a scan by padding the last byte with 1-bits and starts with DC prediction at
 * zero, which is exactly what a restart does. So each piece (full width, `pieceRows` rows, a whole number
 * of MCU rows) is encoded as its own JPEG with the image's settings and standard Huffman tables
 * (encode.ts never optimises them, so every piece's tables are the same), and the file is: the first
 * piece's headers with the image's height and a DRI segment, each piece's entropy-coded data followed by
 * RSTn (n = piece index mod 8) except the last, then EOI. libjpeg subsamples chroma per 2x2 block and
 * pads only at the image's right and bottom edges, so the pixels decode exactly as the one-piece encode's.
 */

/** The largest restart interval a DRI segment holds, in MCUs. */
const MAX_RESTART_INTERVAL = 0xffff;
/**
 * Pieces of a band encoded at once: each is its own sharp call, and a worker's libuv pool holds two
 * threads per task slot (node-args.ts workerEnvironment). Once the other slot's strip is done, the second
 * piece uses the core it left (docs/performance.md, fourteenth round: the 100 MP job 3-5 % sooner).
 */
const PIECES_IN_FLIGHT = 2;

/** Baseline JPEG, no progressive scans: the one kind whose scan can be cut into restart intervals. */
export function encodesByRestartIntervals(options: Pick<EncodeOptions, 'format' | 'progressive'>): boolean {
  return options.format === 'jpeg' && options.progressive !== true;
}

/** MCU edge (square for every setting DIPS encodes): 16 for colour at 4:2:0 (chroma halved both ways), else 8 (4:4:4, or grey, one component). */
export function mcuSize(channels: number, chromaSubsampling: EncodeOptions['chromaSubsampling']): number {
  return channels >= 3 && chromaSubsampling !== '4:4:4' ? 16 : 8;
}

/**
 * Rows per piece for an image of this width encoded in bands of about `bandRows` rows: whole MCU rows,
 * few enough MCUs for one restart interval, and as even a split of the band as that allows (a band of
 * 2500 rows 10000 wide at 4:2:0, where an interval holds at most 1664 rows, gets 2 pieces of 1264), so
 * bands of whole pieces stay near `bandRows`. Undefined when not even one MCU row fits either (a band
 * thinner than an MCU, or an image wider than 65535 MCUs).
 */
export function restartPieceRows(width: number, mcu: number, bandRows: number): number | undefined {
  const mostMcuRows = Math.floor(MAX_RESTART_INTERVAL / Math.ceil(width / mcu));
  const bandMcuRows = Math.floor(bandRows / mcu);
  if (mostMcuRows < 1 || bandMcuRows < 1) return undefined;
  const pieces = Math.ceil(bandMcuRows / mostMcuRows);
  return Math.ceil(bandMcuRows / pieces) * mcu;
}

/** Where a band lies in the image: its first row, a multiple of `pieceRows`, and the image's height. */
export interface RestartBand {
  y: number;
  imageHeight: number;
  pieceRows: number;
}

/** A band's pixels, piece by piece: `rows` rows from its row `top`, as a sharp pipeline to encode. */
export interface BandPixels {
  width: number;
  height: number;
  channels: Channels;
  rows(top: number, rows: number): Sharp;
}

/** A band held as raw pixels: each piece is a view of its rows. */
export function rawBand(band: RawImage): BandPixels {
  const rowBytes = band.width * band.channels;
  return {
    ...band,
    rows: (top, rows) => sharp(band.data.subarray(top * rowBytes, (top + rows) * rowBytes), rawDescriptor({ ...band, height: rows })),
  };
}

/**
 * The bytes of the output JPEG that `band` (full-width rows of the image starting at `at.y`) makes, in
 * file order: the headers when it starts the image, each piece's entropy-coded data with its restart
 * marker, and EOI when it ends the image. Concatenated in band order they are the whole file.
 */
export async function encodeRestartBand(band: BandPixels, at: RestartBand, options: EncodeOptions): Promise<Buffer[]> {
  const { y, imageHeight, pieceRows } = at;
  if (y % pieceRows !== 0) throw new Error(`a band starting at row ${y} is not on a piece boundary (every ${pieceRows} rows)`);
  const pieces = Array.from({ length: Math.ceil(band.height / pieceRows) }, (_, piece) => {
    const top = piece * pieceRows;
    return { top, rows: Math.min(pieceRows, band.height - top) };
  });
  const encoded = new Array<Buffer>(pieces.length);
  const next = [...pieces.keys()];
  const encodeNext = async (): Promise<void> => {
    for (let piece = next.shift(); piece !== undefined; piece = next.shift()) {
      const { top, rows } = pieces[piece]!;
      try {
        encoded[piece] = await encodePipeline(band.rows(top, rows), band, options);
      } catch (error) {
        next.length = 0; // the band has failed: start no more of its pieces
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PIECES_IN_FLIGHT, pieces.length) }, encodeNext));
  const bytes: Buffer[] = [];
  for (const [piece, { top, rows }] of pieces.entries()) {
    const { headers, scan, frame } = splitJpeg(encoded[piece]!);
    const index = (y + top) / pieceRows;
    const interval = (pieceRows / frame.mcuHeight) * Math.ceil(band.width / frame.mcuWidth);
    if (!Number.isInteger(interval) || interval > MAX_RESTART_INTERVAL) {
      throw new Error(`pieces of ${pieceRows} rows are not a restart interval of whole ${frame.mcuWidth}x${frame.mcuHeight} MCUs`);
    }
    if (index === 0) bytes.push(imageHeaders(headers, frame, imageHeight, interval));
    bytes.push(scan);
    const last = y + top + rows >= imageHeight;
    bytes.push(last ? Buffer.from([0xff, 0xd9]) : Buffer.from([0xff, 0xd0 + (index % 8)]));
  }
  return bytes;
}

interface Frame {
  /** Offset of SOF0's height field in the headers. */
  heightAt: number;
  /** Offset of the SOS segment in the headers. */
  scanAt: number;
  mcuWidth: number;
  mcuHeight: number;
}

/**
 * Cuts an encoder's baseline JPEG into its headers (SOI through the SOS segment) and its entropy-coded
 * data (without EOI), and reads the MCU size from SOF0's sampling factors.
 */
function splitJpeg(jpeg: Buffer): { headers: Buffer; scan: Buffer; frame: Frame } {
  if (jpeg.readUInt16BE(0) !== 0xffd8 || jpeg.readUInt16BE(jpeg.length - 2) !== 0xffd9) throw new Error('the encoder did not write a whole JPEG');
  let frame: Frame | undefined;
  for (let at = 2; at + 4 <= jpeg.length; ) {
    const marker = jpeg.readUInt16BE(at);
    const end = at + 2 + jpeg.readUInt16BE(at + 2);
    if (marker === 0xffc0) {
      const components = jpeg[at + 9];
      let h = 1;
      let v = 1;
      for (let c = 0; c < components; c++) {
        const sampling = jpeg[at + 11 + 3 * c];
        h = Math.max(h, sampling >> 4);
        v = Math.max(v, sampling & 0x0f);
      }
      frame = { heightAt: at + 5, scanAt: 0, mcuWidth: 8 * h, mcuHeight: 8 * v };
    } else if ((marker >= 0xffc1 && marker <= 0xffcf && marker !== 0xffc4 && marker !== 0xffc8 && marker !== 0xffcc) || marker === 0xffdd) {
      throw new Error(`the encoder wrote marker ${marker.toString(16)}, not a baseline JPEG without restarts`);
    } else if (marker === 0xffda) {
      if (!frame) throw new Error('the encoder wrote a scan before its frame header');
      return { headers: jpeg.subarray(0, end), scan: jpeg.subarray(end, jpeg.length - 2), frame: { ...frame, scanAt: at } };
    }
    at = end;
  }
  throw new Error('the encoder wrote no scan');
}

/** The first piece's headers made the image's: SOF0 gets the image's height, and a DRI segment goes before SOS. */
function imageHeaders(headers: Buffer, frame: Frame, imageHeight: number, interval: number): Buffer {
  const before = Buffer.from(headers.subarray(0, frame.scanAt));
  before.writeUInt16BE(imageHeight, frame.heightAt);
  const restart = Buffer.from([0xff, 0xdd, 0x00, 0x04, interval >> 8, interval & 0xff]);
  return Buffer.concat([before, restart, headers.subarray(frame.scanAt)]);
}
