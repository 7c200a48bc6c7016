import sharp from 'sharp';
import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { rawDescriptor } from '../raw-image.js';
import { toRawImage } from '../sharp-raw.js';

/** libvips builds the Gaussian mask out to where it falls below min_ampl = 0.2: radius < 1.8 sigma. */
const blurRadius = (sigma: number): number => Math.ceil(2 * sigma) + 1;

export const blur = defineOperation({
  name: 'blur',
  description: 'Gaussian blur (libvips gaussblur, edges extended by copying).',
  params: z
    .object({ sigma: z.number().min(0.3).max(100).default(2).describe('standard deviation of the Gaussian, in pixels') })
    .strict(),
  kind: 'local',
  tileable: true,
  halo: ({ sigma }) => blurRadius(sigma),
  apply: async (image, { sigma }) => toRawImage(sharp(image.data, rawDescriptor(image)).blur(sigma)),
});
