import { HttpError } from '../shared/http-error.js';
import { didYouMean } from '../shared/suggest.js';
import type { MasterConfig } from '../shared/config.js';
import { InputError, openInput, type InputErrorCode, type InputFormat } from '../image-core/decode.js';
import { effortRefusal, outputFormatFor } from '../image-core/encode.js';
import { outputFormats, type OutputFormat } from '../protocol/output.js';
import { PipelineError } from '../image-core/errors.js';
import { parsePipeline, serializePipeline } from '../image-core/pipeline.js';
import { planImage } from '../image-core/planner.js';
import type { NewJob } from './job-store.js';
import { parseOptionsField, recipeOf, type Presets } from './presets.js';
import type { UploadedFile } from './upload.js';

/** An image of a submission as validation reads it: its display name, its size, and how to read its header. */
export interface SubmittedImage {
  name: string;
  bytes: number;
  /** Its file, or a buffer holding at least its header: asked for when the image is validated, one at a time. */
  header(): Promise<string | Buffer>;
}

/** A file a multipart request spooled, as validation reads it. */
export const spooledImage = ({ name, bytes, path }: UploadedFile): SubmittedImage => ({ name, bytes, header: async () => path });

/**
 * Checks everything about a submission before anything is stored; errors name the part at fault. A job
 * names a pipeline or a preset (whose format, quality and options the job's own fields override).
 */
export async function validateSubmission(
  config: Pick<MasterConfig, 'maxPipelineSteps' | 'maxPixels' | 'workerMemoryBytes' | 'tileSize'>,
  presets: Presets,
  files: readonly SubmittedImage[],
  fields: Record<string, string>,
): Promise<Omit<NewJob, 'id'>> {
  if (files.length === 0) throw new HttpError(400, 'no_images', 'the request has no file parts named "images"');
  const recipe = recipeOf(presets, {
    // An empty field is an absent one (an HTML form sends every field it has).
    pipeline: fields.pipeline === '' ? undefined : fields.pipeline,
    preset: fields.preset === '' ? undefined : fields.preset,
    format: formatField(fields.format),
    quality: qualityField(fields.quality),
    options: parseOptionsField(fields.options),
  });
  let pipelineJson: unknown = recipe.pipeline;
  if (typeof recipe.pipeline === 'string') {
    try {
      pipelineJson = JSON.parse(recipe.pipeline);
    } catch (error) {
      throw new HttpError(400, 'malformed_pipeline', `the "pipeline" field is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (Array.isArray(pipelineJson) && pipelineJson.length > config.maxPipelineSteps) {
    throw new HttpError(413, 'pipeline_too_long', `the pipeline has ${pipelineJson.length} steps; at most ${config.maxPipelineSteps} are allowed`);
  }
  let steps;
  try {
    steps = parsePipeline(pipelineJson, config.maxPipelineSteps);
  } catch (error) {
    if (error instanceof PipelineError) throw new HttpError(422, 'bad_pipeline', error.message);
    throw error;
  }
  const { format, quality, options } = recipe;
  const images = [];
  for (const file of files) {
    if (file.bytes === 0) throw new HttpError(400, 'empty_image', `image "${file.name}" is empty`);
    try {
      const info = await openInput(await file.header(), { maxPixels: config.maxPixels, maxDecodeBytes: config.workerMemoryBytes, name: file.name });
      images.push({ name: file.name, width: info.width, height: info.height, channels: info.channels, format: info.format, progressive: info.progressive, turned: info.turned, plain: info.plain });
    } catch (error) {
      if (error instanceof InputError) throw new HttpError(statusForInputError(error.code), error.code, error.message);
      throw error;
    }
    const refused = effortRefusal(format ?? outputFormatFor(images.at(-1)!.format as InputFormat), options?.effort);
    if (refused) throw new HttpError(422, 'bad_options', `image "${file.name}": ${refused}`);
    // Steps whose parameters depend on the image size (a crop inside it, a resize the workers can hold)
    // are checked against the header now, not when a worker fails later.
    try {
      const { width, height, channels } = images.at(-1)!;
      planImage({ width, height, channels }, steps, {
        maxPixels: config.maxPixels,
        workerMemoryBytes: config.workerMemoryBytes,
        ...(config.tileSize ? { tileSize: config.tileSize } : {}),
      });
    } catch (error) {
      if (error instanceof PipelineError) throw new HttpError(422, 'bad_pipeline', `image "${file.name}": ${error.message}`);
      throw error;
    }
  }
  return { pipeline: serializePipeline(steps), images, ...(format ? { format } : {}), ...(quality ? { quality } : {}), ...(options ? { options } : {}) };
}

function formatField(text: string | undefined): OutputFormat | undefined {
  if (text === undefined || text === '') return undefined;
  if (!(outputFormats as readonly string[]).includes(text)) throw new HttpError(422, 'bad_format', `format "${text}" is not one of ${outputFormats.join(', ')}${didYouMean(text, outputFormats)}`);
  return text as OutputFormat;
}

function qualityField(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const quality = Number(text);
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new HttpError(422, 'bad_quality', `quality "${text}" must be an integer from 1 to 100`);
  return quality;
}

/** A pixel bomb is too large (413); anything else about the file means it is not a usable image (415). */
function statusForInputError(code: InputErrorCode): number {
  return code === 'too_many_pixels' ? 413 : 415;
}
