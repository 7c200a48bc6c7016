import sharp from 'sharp';
import { z } from 'zod';
import { defineOperation } from '../operation.js';
import type { PixelMove } from '../pixel-move.js';
import { rawDescriptor, type RawImage } from '../raw-image.js';
import { toRawImage } from '../sharp-raw.js';

const rotateBy = (angle: number) => async (image: RawImage) =>
  toRawImage(sharp(image.data, rawDescriptor(image)).rotate(angle));

/** Rectangle maps of clockwise quarter turns; `input` is the size before the turn. */
const quarterTurns: Record<0 | 90 | 180 | 270, Omit<PixelMove, 'applyToTile'>> = {
  0: { outputSize: (input) => input, forward: (r) => r, backward: (r) => r },
  90: {
    outputSize: ({ width, height }) => ({ width: height, height: width }),
    forward: (r, input) => ({ x: input.height - r.y - r.height, y: r.x, width: r.height, height: r.width }),
    backward: (r, input) => ({ x: r.y, y: input.height - r.x - r.width, width: r.height, height: r.width }),
  },
  180: {
    outputSize: (input) => input,
    forward: (r, input) => ({ ...r, x: input.width - r.x - r.width, y: input.height - r.y - r.height }),
    backward: (r, input) => ({ ...r, x: input.width - r.x - r.width, y: input.height - r.y - r.height }),
  },
  270: {
    outputSize: ({ width, height }) => ({ width: height, height: width }),
    forward: (r, input) => ({ x: r.y, y: input.width - r.x - r.width, width: r.height, height: r.width }),
    backward: (r, input) => ({ x: input.width - r.y - r.height, y: r.x, width: r.height, height: r.width }),
  },
};

/** The angle as a clockwise turn in [0, 360). */
const normalise = (angle: number): number => ((angle % 360) + 360) % 360;

export const rotate = defineOperation({
  name: 'rotate',
  description:
    'Rotates clockwise by angle degrees. Multiples of 90 move pixels exactly (and are tiled); other angles ' +
    'interpolate, enlarge the canvas with a black background, and run on the whole image.',
  params: z
    .object({ angle: z.number().min(-360).max(360).describe('clockwise angle in degrees (negative: anticlockwise)') })
    .strict(),
  kind: 'geometric',
  tileable: true,
  halo: () => 0,
  apply: (image, { angle }) => rotateBy(normalise(angle))(image),
  pixelMove: ({ angle }) => {
    const turn = normalise(angle);
    if (turn !== 0 && turn !== 90 && turn !== 180 && turn !== 270) return undefined;
    return { ...quarterTurns[turn], applyToTile: rotateBy(turn) };
  },
});
