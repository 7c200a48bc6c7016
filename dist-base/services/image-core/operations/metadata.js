import { z } from 'zod';
import { defineAnalysisOperation } from '../operation.js';
import { describeSource } from '../source-metadata.js';
export const metadata = defineAnalysisOperation({
    name: 'metadata',
    description: 'Reports facts of the input file in annotations.metadata: format, size, channels, colour space, ICC profile ' +
        'name, EXIF tags, and gps: true (with the location) when the file carries GPS tags; pixels are left unchanged.',
    params: z.object({}).strict(),
    analyse: async (image, _params, context) => {
        // The input file is given on the whole-image path; without it only the pixels are known.
        if (context.source !== undefined)
            return describeSource(context.source);
        return { width: image.width, height: image.height, channels: image.channels, source: 'unavailable' };
    },
});
//# sourceMappingURL=metadata.js.map