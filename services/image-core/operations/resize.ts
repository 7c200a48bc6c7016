import sharp from 'sharp';
import { z } from 'zod';
import { defineOperation } from '../operation.js';
import type { Size } from '../pixel-move.js';
import { PipelineError } from '../pipeline.js';
import { rawDescriptor } from '../raw-image.js';
import { toRawImage } from '../sharp-raw.js';

/** sharp's default input limit; a resize may not produce more than it would accept. */
const MAX_RESIZE_PIXELS = 268_402_689;

const dimension = (what: string) => z.number().int().min(1).max(65_535).optional().describe(what);

interface ResizeParams {
  width?: number;
  height?: number;
  scale?: number;
}

/** The output size; a missing width or height keeps the aspect ratio (rounded, at least 1 pixel). */
function targetSize({ width, height, scale }: ResizeParams, input: Size): Size {
  const scaled = (length: number, factor: number) => Math.max(1, Math.round(length * factor));
  const size =
    scale !== undefined
      ? { width: scaled(input.width, scale), height: scaled(input.height, scale) }
      : {
          width: width ?? scaled(input.width, height! / input.height),
          height: height ?? scaled(input.height, width! / input.width),
        };
  if (size.width * size.height > MAX_RESIZE_PIXELS) {
    throw new PipelineError(
      `resize: ${size.width}x${size.height} from the ${input.width}x${input.height} image exceeds ` +
        `${MAX_RESIZE_PIXELS} pixels`,
    );
  }
  return size;
}

export const resize = defineOperation({
  name: 'resize',
  description:
    'Resamples (Lanczos 3) to width and/or height, or by scale; one of width/height keeps the aspect ratio, ' +
    'both stretch to exactly that size. Resampling does not tile exactly, so it runs on the whole image.',
  params: z
    .object({
      width: dimension('output width in pixels'),
      height: dimension('output height in pixels'),
      scale: z.number().min(0.001).max(16).optional().describe('factor applied to both sides, instead of width/height'),
    })
    .strict()
    .refine((p) => (p.scale === undefined) !== (p.width === undefined && p.height === undefined), {
      message: 'give width and/or height, or scale (not both kinds)',
    }),
  kind: 'geometric',
  // Each output pixel mixes a kernel of input pixels placed by the global scale; libvips also
  // shrinks by integer blocks first, so a tile cut anywhere but at block-aligned positions differs.
  tileable: false,
  halo: () => 0,
  apply: async (image, params) => {
    const { width, height } = targetSize(params, image);
    return toRawImage(sharp(image.data, rawDescriptor(image)).resize(width, height, { fit: 'fill' }));
  },
});
