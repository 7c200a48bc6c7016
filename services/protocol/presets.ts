import { z } from 'zod';
import { outputOptions } from './output.js';
import { outputFormat, quality } from './api.js';
import { strictBody } from './strict-body.js';

/*
 * Presets: named pipelines stored on the master (GET/PUT/DELETE /v1/presets/{name}) that a job names
 * instead of giving a pipeline (multipart field `preset`, batch body `"preset"`). Master, CLI, console
 * and tests read these schemas.
 */

/** Lower-case, URL- and file-name-safe, at most 63 characters. */
export const presetName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a preset name is 1-63 characters of a-z, 0-9, ".", "_" and "-", starting with a letter or digit');

/** PUT /v1/presets/{name}: what the preset does to an image; `format`, `quality` and `options` as for a job. */
export const presetBody = strictBody({
  pipeline: z.array(z.record(z.string(), z.unknown())),
  description: z.string().max(500).optional(),
  format: outputFormat.optional(),
  quality: quality.optional(),
  options: outputOptions.optional(),
});
export type PresetBody = z.infer<typeof presetBody>;

/** GET /v1/presets/{name}. */
export const preset = presetBody.extend({ name: presetName, updatedAt: z.string() });
export type Preset = z.infer<typeof preset>;

/** GET /v1/presets. `presetsOnly`: the master refuses ad-hoc pipelines and its presets cannot be changed over the API. */
export const presetList = z.object({ presets: z.array(preset), presetsOnly: z.boolean() });
export type PresetList = z.infer<typeof presetList>;

/** DIPS_PRESETS_FILE: the fixed menu of a presets-only master. */
export const presetsFile = z.object({ presets: z.array(presetBody.extend({ name: presetName })) }).strict();
export type PresetsFile = z.infer<typeof presetsFile>;

/** GET /v1/jobs/{id}/duplicates: items whose perceptual hashes lie within `threshold` bits of each other. */
export const duplicatesReport = z.object({
  threshold: z.number().int().min(0).max(64),
  groups: z.array(
    z.object({
      items: z.array(
        z.object({
          index: z.number().int().min(0),
          name: z.string(),
          phash: z.string().regex(/^[0-9a-f]{16}$/),
          /** Bits that differ from the group's first item (0 for it). */
          distance: z.number().int().min(0).max(64),
        }),
      ),
    }),
  ),
});
export type DuplicatesReport = z.infer<typeof duplicatesReport>;
