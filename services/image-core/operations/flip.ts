import sharp from 'sharp';
import { z } from 'zod';
import { defineOperation } from '../operation.js';
import type { PixelMove } from '../pixel-move.js';
import { rawDescriptor, type RawImage } from '../raw-image.js';
import { toRawImage } from '../sharp-raw.js';

const mirrorVertically = async (image: RawImage) => toRawImage(sharp(image.data, rawDescriptor(image)).flip());
const mirrorHorizontally = async (image: RawImage) => toRawImage(sharp(image.data, rawDescriptor(image)).flop());

/** Top and bottom swap places; a tile's rectangle is mirrored the same way. */
const verticalMirror: PixelMove = {
  outputSize: (input) => input,
  forward: (rect, input) => ({ ...rect, y: input.height - rect.y - rect.height }),
  backward: (rect, input) => ({ ...rect, y: input.height - rect.y - rect.height }),
  applyToTile: mirrorVertically,
};

const horizontalMirror: PixelMove = {
  outputSize: (input) => input,
  forward: (rect, input) => ({ ...rect, x: input.width - rect.x - rect.width }),
  backward: (rect, input) => ({ ...rect, x: input.width - rect.x - rect.width }),
  applyToTile: mirrorHorizontally,
};

export const flip = defineOperation({
  name: 'flip',
  description: 'Mirrors the image top to bottom (about the horizontal axis).',
  params: z.object({}).strict(),
  kind: 'geometric',
  tileable: true,
  halo: () => 0,
  apply: mirrorVertically,
  pixelMove: () => verticalMirror,
});

export const flop = defineOperation({
  name: 'flop',
  description: 'Mirrors the image left to right (about the vertical axis).',
  params: z.object({}).strict(),
  kind: 'geometric',
  tileable: true,
  halo: () => 0,
  apply: mirrorHorizontally,
  pixelMove: () => horizontalMirror,
});
