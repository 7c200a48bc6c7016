import { createRequire } from 'node:module';
import sharp from 'sharp';
import { z } from 'zod';
/**
 * Text rendered to an RGBA raster, the same on every machine: the glyph outlines come from a font file
 * installed with the project (DejaVu, the npm package dejavu-fonts-ttf, free licence), shaped by
 * fontkit (kerning and ligatures from the font's own tables) and filled by the librsvg bundled with sharp as plain SVG paths.
 * No system font, fontconfig or Pango setting takes part.
 */
const fontFiles = {
    sans: 'DejaVuSans.ttf',
    'sans-bold': 'DejaVuSans-Bold.ttf',
    serif: 'DejaVuSerif.ttf',
    mono: 'DejaVuSansMono.ttf',
};
export const fontNames = Object.keys(fontFiles);
/** Baseline-to-baseline distance in font sizes, a common default for body text. */
const LINE_SPACING = 1.2;
/** Text rasters larger than this are refused (a 2000 px font with 1000 characters would be 2 GB). */
export const MAX_TEXT_PIXELS = 40_000_000;
const loaded = new Map();
const require = createRequire(import.meta.url);
/** Loaded on the first text step: every master and worker imports the catalogue, few ever draw text. */
let fontkit;
function font(name) {
    let parsed = loaded.get(name);
    if (!parsed) {
        fontkit ??= require('fontkit');
        parsed = fontkit.openSync(require.resolve(`dejavu-fonts-ttf/ttf/${fontFiles[name]}`));
        loaded.set(name, parsed);
    }
    return parsed;
}
/** SVG paths of one line of text with its baseline at y, starting at x = 0, in pixels. */
function linePaths(face, line, baseline, size) {
    const scale = size / face.unitsPerEm;
    const run = face.layout(line);
    let pen = 0;
    let svg = '';
    run.glyphs.forEach((glyph, i) => {
        const position = run.positions[i];
        const d = glyph.path.toSVG();
        if (d) {
            const x = (pen + position.xOffset) * scale;
            const y = baseline - position.yOffset * scale;
            // Glyph outlines are in font units with y pointing up.
            svg += `<path transform="translate(${x.toFixed(3)} ${y.toFixed(3)}) scale(${scale} ${-scale})" d="${d}"/>`;
        }
        pen += position.xAdvance;
    });
    return svg;
}
export const textStyleParams = {
    text: z.string().min(1).max(1000).describe('the text; \\n starts a new line'),
    size: z.number().int().min(6).max(2000).default(48).describe('font size in pixels (the em square)'),
    font: z.enum(fontNames).default('sans').describe('DejaVu face shipped with DIPS'),
    colour: z
        .string()
        .regex(/^#[0-9a-fA-F]{6}$/, 'a colour such as #ffffff')
        .default('#ffffff')
        .describe('fill colour as #rrggbb'),
};
/** Width and height of the raster the text needs, without rendering it (checked before any work). */
export function textBox(style) {
    const face = font(style.font);
    const lines = style.text.split('\n');
    const widest = Math.max(...lines.map((line) => face.layout(line).advanceWidth));
    const width = Math.max(1, Math.ceil((widest * style.size) / face.unitsPerEm));
    const lineHeight = Math.ceil(style.size * LINE_SPACING);
    return { width, height: lineHeight * lines.length };
}
/** The text as an RGBA raster: the colour everywhere, the glyph coverage in alpha. */
export async function renderText(style) {
    const face = font(style.font);
    const { width, height } = textBox(style);
    const lineHeight = Math.ceil(style.size * LINE_SPACING);
    // Baseline of the first line: the ascent, centred in the line's extra spacing.
    const ascent = (face.ascent / face.unitsPerEm) * style.size;
    const descent = (-face.descent / face.unitsPerEm) * style.size;
    const firstBaseline = (lineHeight - ascent - descent) / 2 + ascent;
    const paths = style.text
        .split('\n')
        .map((line, i) => linePaths(face, line, firstBaseline + i * lineHeight, style.size))
        .join('');
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><g fill="${style.colour}">${paths}</g></svg>`;
    const { data, info } = await sharp(Buffer.from(svg), { density: 72 }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height };
}
//# sourceMappingURL=text-raster.js.map