import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { hasAlpha, type RawImage } from '../raw-image.js';

/**
 * OpenCV's COLOR_RGB2GRAY in its own fixed point (Y = 0.299 R + 0.587 G + 0.114 B, 14-bit weights,
 * rounded), so grey-based operations agree with what users of the OpenCV original saw.
 */
export function toGrey(image: RawImage): RawImage {
  if (image.channels <= 2) return image;
  const { data, width, height } = image;
  const alpha = hasAlpha(image);
  const outChannels = alpha ? 2 : 1;
  const out = Buffer.allocUnsafe(width * height * outChannels);
  for (let i = 0, o = 0; i < data.length; i += image.channels, o += outChannels) {
    out[o] = (data[i] * 4899 + data[i + 1] * 9617 + data[i + 2] * 1868 + 8192) >> 14;
    if (alpha) out[o + 1] = data[i + 3];
  }
  return { data: out, width, height, channels: outChannels };
}

export const grayscale = defineOperation({
  name: 'grayscale',
  description: 'Converts to one grey channel (OpenCV weights 0.299 R + 0.587 G + 0.114 B); alpha is kept.',
  params: z.object({}).strict(),
  kind: 'local',
  tileable: true,
  halo: () => 0,
  apply: async (image) => toGrey(image),
});
