import { z } from 'zod';
import { decodeImage } from '../decode.js';
import { InputError, PipelineError } from '../errors.js';
import { defineOperation, placeOf } from '../operation.js';
import { blendOver, memoised, overlayOrigin, placementParams, repeatedOrigins, rgbaOf } from '../overlay.js';
import { applySharp } from '../sharp-raw.js';
/** A data URL holds the overlay; 1.3 M characters is about 1 MB of image, the master's field limit. */
const MAX_DATA_URL_LENGTH = 1_400_000;
/** Overlays are logos and watermarks: 16 MP bounds what one decoded overlay may take (64 MB RGBA). */
const MAX_OVERLAY_PIXELS = 16_000_000;
const dataUrl = /^data:image\/(png|jpeg|webp|gif|avif|tiff);base64,([A-Za-z0-9+/]+={0,2})$/;
const compositeParams = z
    .object({
    image: z
        .string()
        .max(MAX_DATA_URL_LENGTH)
        .regex(dataUrl, 'a data URL such as data:image/png;base64,iVBOR…')
        .describe('the overlay (PNG with alpha for a watermark) as a base64 data URL; the console uploads a file into it'),
    width: z.number().int().min(1).max(16_384).optional().describe('resize the overlay to this width (aspect kept)'),
    ...placementParams,
    tile: z.boolean().default(false).describe('repeat the overlay over the whole image, starting from its placed position'),
})
    .strict();
async function decodeOverlay(params) {
    const bytes = Buffer.from(dataUrl.exec(params.image)[2], 'base64');
    try {
        let overlay = await decodeImage(bytes, { maxPixels: MAX_OVERLAY_PIXELS, name: 'composite overlay' });
        if (params.width !== undefined) {
            const width = params.width;
            overlay = { ...(await applySharp(overlay, (pipeline) => pipeline.resize({ width }))), format: overlay.format };
        }
        return rgbaOf(overlay);
    }
    catch (error) {
        if (error instanceof InputError)
            throw new PipelineError(`composite: ${error.message}`);
        throw error;
    }
}
/** Decoded overlays by content (data URL and width), a handful at a time. */
const cachedOverlay = memoised(8, (key) => decodeOverlay(JSON.parse(key)));
const overlayOf = (params) => cachedOverlay(JSON.stringify({ image: params.image, width: params.width }));
export const composite = defineOperation({
    name: 'composite',
    description: 'Lays an overlay image (a watermark; a data URL) over the image at a gravity or at left/top, with an ' +
        'opacity, once or repeated as tiles; give it several times for several overlays. Grey images stay grey ' +
        '(the overlay\'s grey is used); alpha is kept (the overlay adds its coverage).',
    params: compositeParams,
    // Each output pixel is the base pixel blended with the overlay pixel over it: a tile that knows its
    // position blends its part exactly.
    tiling: { kind: 'pointwise' },
    apply: async (image, params, context) => {
        const { region, imageSize } = placeOf(image, context);
        const overlay = await overlayOf(params);
        const first = overlayOrigin(imageSize, overlay, params);
        const origins = params.tile ? repeatedOrigins(first, overlay, region) : [first];
        return blendOver(image, region, overlay, origins, params.opacity);
    },
});
//# sourceMappingURL=composite.js.map