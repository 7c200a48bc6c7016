import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { hasAlpha } from '../raw-image.js';

export const invert = defineOperation({
  name: 'invert',
  description: 'Replaces every colour sample v by 255 - v; alpha is kept.',
  params: z.object({}).strict(),
  kind: 'local',
  tileable: true,
  halo: () => 0,
  apply: async (image) => {
    const out = Buffer.from(image.data);
    const colourChannels = hasAlpha(image) ? image.channels - 1 : image.channels;
    for (let i = 0; i < out.length; i += image.channels) {
      for (let c = 0; c < colourChannels; c++) out[i + c] = 255 - out[i + c];
    }
    return { ...image, data: out };
  },
});
