import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { prepareZXingModule, readBarcodes } from 'zxing-wasm/reader';
import { z } from 'zod';
import { colourChannels, colourCopy, colourCopyWithAlpha, drawLine } from '../draw.js';
import { defineOperation } from '../operation.js';
const OUTLINE = [255, 0, 0];
let readerReady;
/** Loads the reader's .wasm from the installed package (zxing-wasm would otherwise fetch it from a CDN). */
function prepareReader() {
    readerReady ??= (async () => {
        const wasmPath = createRequire(import.meta.url).resolve('zxing-wasm/reader/zxing_reader.wasm');
        const wasm = await readFile(wasmPath);
        const wasmBinary = wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength);
        return prepareZXingModule({ overrides: { wasmBinary }, fireImmediately: true });
    })().catch((error) => {
        readerReady = undefined; // let the next image try again
        throw error;
    });
    return readerReady;
}
/** Every QR code zxing finds in the image (it reads RGBA pixels). */
async function findQrCodes(image) {
    await prepareReader();
    const { data: rgba } = colourCopyWithAlpha(image);
    const data = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.byteLength);
    // zxing reads anything shaped like ImageData: Node has no ImageData class.
    const pixels = { data, width: image.width, height: image.height };
    const results = await readBarcodes(pixels, { formats: ['QRCode'], tryHarder: true, maxNumberOfSymbols: 255 });
    return results.filter((result) => result.isValid);
}
export const qr = defineOperation({
    name: 'qr',
    description: 'Decodes every QR code (zxing); the texts are reported per image (annotations.qr) and each code is ' +
        'outlined in red, so grey images become RGB.',
    params: z.object({}).strict(),
    tiling: { kind: 'whole', reason: 'a code can lie anywhere and at any size' },
    outputChannels: colourChannels,
    apply: async (image, _params, context) => {
        const codes = await findQrCodes(image);
        const marked = colourCopy(image);
        const thickness = Math.max(2, Math.round(Math.min(image.width, image.height) / 300));
        for (const { position: p } of codes) {
            const corners = [p.topLeft, p.topRight, p.bottomRight, p.bottomLeft];
            corners.forEach((corner, i) => drawLine(marked, corner, corners[(i + 1) % 4], OUTLINE, thickness));
        }
        context.annotate?.(codes.map((code) => code.text));
        return marked;
    },
});
//# sourceMappingURL=qr.js.map