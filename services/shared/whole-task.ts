import { z } from 'zod';
import { outputFormats } from '../image-core/encode.js';

/**
 * The whole-image task on the wire: a 4-byte big-endian length, that many bytes of JSON header, then
 * the encoded input image exactly as uploaded. The answer is the encoded output, with its description
 * in the x-dips-result header.
 */
const wholeTaskHeader = z.object({
  name: z.string(),
  pipeline: z.array(z.record(z.string(), z.unknown())),
  format: z.enum(outputFormats).optional(),
  quality: z.number().int().min(1).max(100).optional(),
});
export type WholeTaskHeader = z.infer<typeof wholeTaskHeader>;

const wholeTaskResult = z.object({
  width: z.number().int(),
  height: z.number().int(),
  format: z.enum(outputFormats),
  qr: z.array(z.string()).optional(),
});
export type WholeTaskResult = z.infer<typeof wholeTaskResult>;

export function encodeWholeTask(header: WholeTaskHeader, image: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([length, json, image]);
}

/** A body that is not a well-formed whole-image task; the message says what is wrong. */
export class WholeTaskError extends Error {
  override readonly name = 'WholeTaskError';
}

export function decodeWholeTask(body: Buffer): { header: WholeTaskHeader; image: Buffer } {
  if (body.length < 4) throw new WholeTaskError('whole-image task is shorter than its length prefix');
  const length = body.readUInt32BE(0);
  if (4 + length > body.length) throw new WholeTaskError(`whole-image task header of ${length} bytes exceeds the body`);
  let json: unknown;
  try {
    json = JSON.parse(body.subarray(4, 4 + length).toString('utf8'));
  } catch (error) {
    throw new WholeTaskError(`whole-image task header is not JSON: ${(error as Error).message}`);
  }
  const parsed = wholeTaskHeader.safeParse(json);
  if (!parsed.success) throw new WholeTaskError(`whole-image task header is invalid: ${z.prettifyError(parsed.error)}`);
  return { header: parsed.data, image: body.subarray(4 + length) };
}

/** Response header of every task answer: milliseconds the unit ran in its worker slot (the scaler learns costs from it). */
export const processingMsHeader = 'x-dips-processing-ms';

export const encodeResultHeader = (result: WholeTaskResult): string => encodeURIComponent(JSON.stringify(result));
export const decodeResultHeader = (value: string): WholeTaskResult => wholeTaskResult.parse(JSON.parse(decodeURIComponent(value)));
