import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { applySharp } from '../sharp-raw.js';

export const modulate = defineOperation({
  name: 'modulate',
  description:
    'Scales brightness and saturation and rotates the hue, in libvips LCh space; alpha is kept.',
  params: z
    .object({
      brightness: z.number().min(0).max(10).default(1).describe('brightness multiplier (1 = unchanged)'),
      saturation: z.number().min(0).max(10).default(1).describe('saturation multiplier (0 = grey, 1 = unchanged)'),
      hue: z.number().int().min(-360).max(360).default(0).describe('hue rotation in whole degrees'),
    })
    .strict(),
  tiling: { kind: 'pointwise' },
  apply: async (image, params) => applySharp(image, (pipeline) => pipeline.modulate(params)),
});
