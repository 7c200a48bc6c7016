import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { openDatabase } from './database.js';
import { z } from 'zod';
import { effortRefusal } from '../image-core/encode.js';
import { outputOptions, type OutputFormat, type OutputOptions } from '../protocol/output.js';
import { parsePipeline, PipelineError } from '../image-core/pipeline.js';
import type { BatchJobBody, ResolvedBatchJobBody } from '../protocol/batch.js';
import { presetBody, presetsFile, type Preset, type PresetBody } from '../protocol/presets.js';
import type { MasterConfig } from '../shared/config.js';
import { HttpError } from '../shared/http-error.js';
import { didYouMean } from '../shared/suggest.js';

/**
 * Most presets a master keeps, and most bytes of them together: GET /v1/presets answers all of them at
 * once, so both bound its answer. A preset is a few hundred bytes, unless it carries a watermark (a
 * composite step's data URL, up to about 1.4 MB): 32 MiB holds a few dozen of those beside hundreds
 * of plain ones.
 */
export const maxPresets = 500;
export const maxPresetBytes = 32 * 1024 * 1024;

/** The presets a master knows: its own (SQLite, changed over the API) or a deployer's fixed menu. */
export interface Presets {
  /** True in presets-only mode: ad-hoc pipelines are refused and PUT/DELETE answer 403. */
  readonly presetsOnly: boolean;
  list(): Preset[];
  get(name: string): Preset | undefined;
  /** Creates or replaces the preset; true when it is new. */
  put(name: string, body: PresetBody): boolean;
  /** False when there was no such preset. */
  delete(name: string): boolean;
  close(): void;
}

/**
 * Checks a preset body as a job would be checked: the schema, then the pipeline against the catalogue
 * (422 naming the step), then the encoder options against the format. Returns the body as given.
 */
export function validatePresetBody(body: unknown, maxPipelineSteps: number, what: string): PresetBody {
  const parsed = presetBody.safeParse(body);
  if (!parsed.success) throw new HttpError(400, 'bad_preset', `${what}: ${z.prettifyError(parsed.error)}`);
  try {
    parsePipeline(parsed.data.pipeline, maxPipelineSteps);
  } catch (error) {
    if (error instanceof PipelineError) throw new HttpError(422, 'bad_pipeline', `${what}: ${error.message}`);
    throw error;
  }
  const refused = parsed.data.format && effortRefusal(parsed.data.format, parsed.data.options?.effort);
  if (refused) throw new HttpError(422, 'bad_options', `${what}: ${refused}`);
  return parsed.data;
}

/** Presets in `<dataDir>/presets.sqlite`: they survive restarts and every change is one committed statement. */
class StoredPresets implements Presets {
  readonly presetsOnly = false;
  private readonly db: DatabaseSync;

  constructor(dataDir: string) {
    this.db = openDatabase(path.join(dataDir, 'presets.sqlite'));
    this.db.exec(`CREATE TABLE IF NOT EXISTS presets (name TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;`);
  }

  list(): Preset[] {
    return (this.db.prepare('SELECT * FROM presets ORDER BY name').all() as unknown as PresetRow[]).map(toPreset);
  }

  get(name: string): Preset | undefined {
    const row = this.db.prepare('SELECT * FROM presets WHERE name = ?').get(name) as unknown as PresetRow | undefined;
    return row && toPreset(row);
  }

  put(name: string, body: PresetBody): boolean {
    const json = JSON.stringify(body);
    const others = this.db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(body)), 0) AS bytes FROM presets WHERE name <> ?').get(name) as { n: number; bytes: number };
    const isNew = this.get(name) === undefined;
    if (isNew && others.n >= maxPresets) throw new HttpError(409, 'presets_full', `the master keeps at most ${maxPresets} presets; delete one first`);
    if (others.bytes + json.length > maxPresetBytes) {
      throw new HttpError(409, 'presets_full', `the presets would take more than ${maxPresetBytes} bytes together; delete some first`);
    }
    this.db
      .prepare('INSERT INTO presets (name, body, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at')
      .run(name, json, Date.now());
    return isNew;
  }

  delete(name: string): boolean {
    return Number(this.db.prepare('DELETE FROM presets WHERE name = ?').run(name).changes) > 0;
  }

  close(): void {
    this.db.close();
  }
}

interface PresetRow {
  name: string;
  body: string;
  updated_at: number;
}

const toPreset = (row: PresetRow): Preset => ({ name: row.name, ...(JSON.parse(row.body) as PresetBody), updatedAt: new Date(row.updated_at).toISOString() });

/** The deployer's menu (DIPS_PRESETS_FILE), read and checked once at start; nobody changes it over the API. */
class FixedPresets implements Presets {
  readonly presetsOnly = true;
  private readonly presets = new Map<string, Preset>();

  constructor(file: string, maxPipelineSteps: number) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new Error(`DIPS_PRESETS_FILE ${file}: ${(error as Error).message}`);
    }
    const parsed = presetsFile.safeParse(json);
    if (!parsed.success) throw new Error(`DIPS_PRESETS_FILE ${file}: ${z.prettifyError(parsed.error)}`);
    const updatedAt = new Date().toISOString();
    for (const { name, ...body } of parsed.data.presets) {
      if (this.presets.has(name)) throw new Error(`DIPS_PRESETS_FILE ${file}: preset "${name}" is given twice`);
      const checked = validatePresetBody(body, maxPipelineSteps, `DIPS_PRESETS_FILE ${file}, preset "${name}"`);
      this.presets.set(name, { name, ...checked, updatedAt });
    }
  }

  list(): Preset[] {
    return [...this.presets.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): Preset | undefined {
    return this.presets.get(name);
  }

  put(): never {
    throw fixedMenuRefusal();
  }

  delete(): never {
    throw fixedMenuRefusal();
  }

  close(): void {}
}

function presetsOnlyRefusal(message: string): HttpError {
  return new HttpError(403, 'presets_only', `this master runs in presets-only mode: ${message}`);
}

/** PUT or DELETE of a preset in presets-only mode. */
export const fixedMenuRefusal = (): HttpError =>
  presetsOnlyRefusal("presets are the deployer's fixed menu (DIPS_PRESETS_FILE) and cannot be changed over the API");

/** The master's presets: the fixed menu in presets-only mode, else the stored ones. */
export function openPresets(config: Pick<MasterConfig, 'dataDir' | 'presetsOnly' | 'presetsFile' | 'maxPipelineSteps'>): Presets {
  if (!config.presetsOnly) return new StoredPresets(config.dataDir);
  if (!config.presetsFile) throw new Error('DIPS_PRESETS_ONLY=true needs DIPS_PRESETS_FILE: the JSON file of the presets jobs may name');
  return new FixedPresets(config.presetsFile, config.maxPipelineSteps);
}

/** What a job asks for, as given: its own pipeline or a preset's name, and output settings that override the preset's. */
export interface JobRequest<Pipeline> {
  pipeline?: Pipeline | undefined;
  preset?: string | undefined;
  format?: OutputFormat | undefined;
  quality?: number | undefined;
  options?: OutputOptions | undefined;
}

/** What a job runs: the pipeline (its own, or its preset's) and the output settings, the job's over the preset's. */
export interface JobRecipe<Pipeline> {
  pipeline: Pipeline | Preset['pipeline'];
  format?: OutputFormat;
  quality?: number;
  options?: OutputOptions;
}

/**
 * Resolves a job's preset. A pipeline and a preset together is a 400, a pipeline in presets-only
 * mode a 403, an unknown preset a 422 naming it.
 */
export function recipeOf<Pipeline>(presets: Presets, job: JobRequest<Pipeline>): JobRecipe<Pipeline> {
  if (job.pipeline !== undefined && job.preset !== undefined) {
    throw new HttpError(400, 'preset_and_pipeline', 'give a "pipeline" or a "preset", not both');
  }
  if (job.pipeline !== undefined && presets.presetsOnly) throw presetsOnlyRefusal('name one of GET /v1/presets in "preset" instead of giving a "pipeline"');
  const own = { ...(job.format ? { format: job.format } : {}), ...(job.quality ? { quality: job.quality } : {}) };
  if (job.pipeline !== undefined) return { pipeline: job.pipeline, ...own, ...(job.options ? { options: job.options } : {}) };
  if (job.preset === undefined) throw new HttpError(400, 'missing_pipeline', 'the "pipeline" field is missing (or name a preset in "preset")');
  const preset = presets.get(job.preset);
  if (!preset) throw new HttpError(422, 'unknown_preset', `there is no preset "${job.preset}"${didYouMean(job.preset, presets.list().map((p) => p.name))} (GET /v1/presets lists them)`);
  const options = { ...preset.options, ...job.options };
  return {
    pipeline: preset.pipeline,
    ...(preset.format ? { format: preset.format } : {}),
    ...(preset.quality ? { quality: preset.quality } : {}),
    ...own,
    ...(Object.keys(options).length > 0 ? { options } : {}),
  };
}

/** A batch job body with its preset resolved (recipeOf): what the batch runner stores and runs. */
export function resolveBatchBody(presets: Presets, body: BatchJobBody): ResolvedBatchJobBody {
  const { pipeline, preset, format, quality, options, ...rest } = body;
  const recipe = recipeOf(presets, { pipeline, preset, format, quality, options });
  const formats = body.output?.formats ?? [body.output?.format ?? recipe.format];
  for (const known of formats) {
    const refused = known && effortRefusal(known, recipe.options?.effort);
    if (refused) throw new HttpError(422, 'bad_options', refused);
  }
  return { ...rest, ...recipe };
}

/** The multipart `options` field or a body's `options`: 400 for malformed JSON, 422 naming what the schema refuses. */
export function parseOptionsField(text: string | undefined): OutputOptions | undefined {
  if (text === undefined || text === '') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, 'malformed_options', `the "options" field is not valid JSON: ${(error as Error).message}`);
  }
  return checkOptions(json);
}

export function checkOptions(json: unknown): OutputOptions {
  const parsed = outputOptions.safeParse(json);
  if (!parsed.success) throw new HttpError(422, 'bad_options', `options: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
