import fs from 'node:fs/promises';
import path from 'node:path';
import { loadMasterConfig } from '../shared/config.js';
import { extensionFor } from '../image-core/encode.js';
import { type OutputFormat } from '../protocol/output.js';
import { InputError } from '../image-core/decode.js';
import { parsePipeline } from '../image-core/pipeline.js';
import { processImage } from '../image-core/process-image.js';

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
      const result = await processImage(
        file,
        steps,
        { ...(options.format ? { format: options.format } : {}), ...(options.quality ? { quality: Number(options.quality) } : {}) },
        { maxPixels, name },
      );
      const target = path.join(options.out, `${path.parse(name).name}.${extensionFor(result.format)}`);
      await fs.writeFile(target, result.data);
      process.stdout.write(`${target}${result.annotations.qr?.length ? `\tqr: ${JSON.stringify(result.annotations.qr)}` : ''}\n`);
    } catch (error) {
      failures += 1;
      // An input's own errors name the file already (decode.ts); a write error does not.
      const message = (error as Error).message;
      process.stderr.write(`dips process: ${error instanceof InputError ? message : `${name}: ${message}`}\n`);
    }
  }
  return failures;
}
