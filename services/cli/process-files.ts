import fs from 'node:fs/promises';
import path from 'node:path';
import { loadMasterConfig } from '../shared/config.js';
import { extensionFor, intoFile, outputFormatFor } from '../image-core/encode.js';
import { type OutputFormat } from '../protocol/output.js';
import { InputError, openInput } from '../image-core/decode.js';
import { OutputError } from '../image-core/errors.js';
import { parsePipeline } from '../image-core/pipeline.js';
import { processImageInto } from '../image-core/process-image.js';

/**
 * `dips process`: the reference result, computed here with no cluster and no tiling, written as
 * DIR/<input name without extension>.<format's extension>. Returns the number of files that failed.
 */
export async function processFiles(files: string[], options: { pipeline: string; out: string; format?: OutputFormat; quality?: string }): Promise<number> {
  const steps = parsePipeline(options.pipeline);
  const { maxPixels } = loadMasterConfig();
  await fs.mkdir(options.out, { recursive: true });
  let failures = 0;
  for (const file of files) {
    const name = path.basename(file);
    try {
      const decoding = { maxPixels, name };
      // The header tells the output's format, so its file's name, before any pixel work.
      const opened = await openInput(file, decoding);
      const format = options.format ?? outputFormatFor(opened.format);
      const target = path.join(options.out, `${path.parse(name).name}.${extensionFor(format)}`);
      // Written by libvips beside the target and renamed into place: a failed image leaves no half-written file.
      const result = await processImageInto(file, steps, { format, ...(options.quality ? { quality: Number(options.quality) } : {}) }, { ...decoding, opened }, intoFile(target));
      process.stdout.write(`${target}${result.annotations.qr?.length ? `\tqr: ${JSON.stringify(result.annotations.qr)}` : ''}\n`);
    } catch (error) {
      failures += 1;
      // An input's errors name the file already (decode.ts), and an output's name the file it would have been.
      const message = (error as Error).message;
      process.stderr.write(`dips process: ${error instanceof InputError || error instanceof OutputError ? message : `${name}: ${message}`}\n`);
    }
  }
  return failures;
}
