import { z } from 'zod';
import { strictBody } from './strict-body.js';

/*
 * What a result can be encoded as: the formats and the output options, as every job, preset and task
 * names them. Declared here, in the protocol, so that the console can load them too; the encoder
 * (services/image-core/encode.ts) applies them.
 */

export const outputFormats = ['jpeg', 'png', 'webp', 'tiff', 'avif'] as const;
export type OutputFormat = (typeof outputFormats)[number];

/** Highest encoder effort per format that has one (sharp's ranges). */
export const maxEffort = { webp: 6, avif: 9, png: 10 } as const;

/** What the encoder does when an output option is not given: metadata stripped, baseline JPEG 4:2:0, lossy WebP/AVIF. */
export const outputDefaults = { metadata: 'strip', progressive: false, chromaSubsampling: '4:2:0', lossless: false } as const;

/**
 * Output options besides format and quality; one schema for the job field `options`, batch bodies,
 * presets and the tasks workers get. Every field is optional and nothing is filled in on parsing, so
 * a job's options can override a preset's key by key; the encoder applies `outputDefaults`.
 */
export const outputOptions = strictBody({
  metadata: z
    .enum(['strip', 'icc', 'exif'])
    .optional()
    .meta({
      default: outputDefaults.metadata,
      description: "strip: no metadata; icc: keep the input's ICC profile; exif: keep the ICC profile and the EXIF tags except GPS",
    }),
  progressive: z.boolean().optional().meta({ default: outputDefaults.progressive, description: 'progressive JPEG (interlaced PNG)' }),
  chromaSubsampling: z
    .enum(['4:2:0', '4:4:4'])
    .optional()
    .meta({ default: outputDefaults.chromaSubsampling, description: 'JPEG and AVIF chroma subsampling; 4:4:4 keeps colour edges sharp' }),
  lossless: z.boolean().optional().meta({ default: outputDefaults.lossless, description: 'lossless WebP or AVIF (quality is then ignored)' }),
  effort: z
    .number()
    .int()
    .min(0)
    .max(10)
    .optional()
    .describe(`encoder effort (CPU for smaller files): WebP 0-${maxEffort.webp} (default 4), AVIF 0-${maxEffort.avif} (default 2), PNG 1-${maxEffort.png} (palette only, unused)`),
});
export type OutputOptions = z.output<typeof outputOptions>;
