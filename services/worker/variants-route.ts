import type { RequestHandler } from 'express';
import { parsePipeline } from '../image-core/pipeline.js';
import { processVariants } from '../image-core/variants.js';
import { decodeHeader, encodeHeader, variantsTask, type VariantsResult } from '../protocol/batch.js';
import type { WorkerConfig } from '../shared/config.js';
import { HttpError } from '../shared/http-error.js';
import type { Slots } from './slots.js';

/** POST /v1/tasks/variants (protocol/batch.ts variantsTask): one decode, several encoded results. */
export function variantsRoute(config: Pick<WorkerConfig, 'maxPixels'>, slots: Slots): RequestHandler {
  return async (req, res) => {
    const header = req.get('x-dips-task');
    if (!header || !Buffer.isBuffer(req.body)) throw new HttpError(400, 'bad_task', 'variants task needs an x-dips-task header and an image body');
    let task;
    try {
      task = decodeHeader(variantsTask, header);
    } catch (error) {
      throw new HttpError(400, 'bad_task', `variants task header is invalid: ${(error as Error).message}`);
    }
    const body = req.body;
    const controller = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) controller.abort(new Error('variants task abandoned by the master'));
    });
    const result = await slots.use(() =>
      processVariants(body, parsePipeline(task.pipeline), task.outputs, { maxPixels: config.maxPixels, name: task.name, signal: controller.signal }),
    );
    const described: VariantsResult = {
      width: result.width,
      height: result.height,
      ...(Object.keys(result.annotations).length > 0 ? { annotations: result.annotations as Record<string, unknown> } : {}),
      outputs: result.variants.map((variant) => ({ format: variant.format, width: variant.width, height: variant.height, bytes: variant.data.length })),
    };
    res.set('x-dips-result', encodeHeader(described)).type('application/octet-stream').send(Buffer.concat(result.variants.map((variant) => variant.data)));
  };
}
