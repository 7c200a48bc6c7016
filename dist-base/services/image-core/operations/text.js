import { z } from 'zod';
import { defineOperation, placeOf } from '../operation.js';
import { blendOver, memoised, overlayOrigin, placementParams } from '../overlay.js';
import { renderText, textBox, textStyleParams, MAX_TEXT_PIXELS } from '../text-raster.js';
const textParams = z
    .object({ ...textStyleParams, ...placementParams })
    .strict()
    .refine((style) => {
    const { width, height } = textBox(style);
    return width * height <= MAX_TEXT_PIXELS;
}, `the rendered text would exceed ${MAX_TEXT_PIXELS} pixels: use a smaller size or shorter lines`);
/** Rendered rasters by style, a handful at a time. */
const cachedRaster = memoised(16, (key) => renderText(JSON.parse(key)));
const rasterOf = (style) => cachedRaster(JSON.stringify({ text: style.text, size: style.size, font: style.font, colour: style.colour }));
export const text = defineOperation({
    name: 'text',
    description: 'Draws text (DejaVu fonts shipped with DIPS, so every machine renders the same pixels) at a gravity or at ' +
        'left/top, in a colour and opacity; \\n breaks lines. Grey images stay grey; alpha is kept (the text adds its coverage).',
    params: textParams,
    // The text is rendered once to a raster placed by the whole image's size; each output pixel is the base
    // pixel blended with the raster pixel over it, so tiles are exact.
    tiling: { kind: 'pointwise' },
    apply: async (image, params, context) => {
        const { region, imageSize } = placeOf(image, context);
        const raster = await rasterOf(params);
        return blendOver(image, region, raster, [overlayOrigin(imageSize, raster, params)], params.opacity);
    },
});
//# sourceMappingURL=text.js.map