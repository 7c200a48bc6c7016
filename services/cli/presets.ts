import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { duplicatesReport, preset, presetBody, presetList, type PresetBody } from '../protocol/presets.js';
import type { MasterClient } from './client.js';
import { formatOption, qualityOption } from './output-flags.js';
import { formatTable } from './table.js';

/* `dips presets` (list, show, put, delete) and `dips duplicates`: the master's presets and a job's duplicates report. */

async function clientFor(master: string | undefined): Promise<MasterClient> {
  const { MasterClient } = await import('./client.js');
  return new MasterClient(master);
}

const printJson = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}

export interface PutFlags {
  file?: string;
  pipeline?: string;
  description?: string;
  format?: string;
  quality?: string;
  options?: string;
}

/** The PUT body: a JSON file of a whole preset, or --pipeline; the other flags override the file's fields. */
export async function presetBodyFrom(flags: PutFlags): Promise<PresetBody> {
  if (flags.file && flags.pipeline) throw new Error('give --file or --pipeline, not both');
  if (!flags.file && !flags.pipeline) throw new Error('give the preset as --file FILE.json or --pipeline JSON');
  const base = flags.file ? parseJson(await readFile(flags.file, 'utf8'), flags.file) : { pipeline: parseJson(flags.pipeline!, '--pipeline') };
  // The master checks the pipeline against its catalogue; only the shape is checked here, to name the flag at fault.
  const body = {
    ...(base as object),
    ...(flags.description ? { description: flags.description } : {}),
    ...(flags.format ? { format: flags.format } : {}),
    ...(flags.quality ? { quality: Number(flags.quality) } : {}),
    ...(flags.options ? { options: parseJson(flags.options, '--options') } : {}),
  };
  const parsed = presetBody.safeParse(body);
  if (!parsed.success) throw new Error(`the preset is not valid: ${parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ')}`);
  return parsed.data;
}

export function registerPresetCommands(program: Command): void {
  const presets = program.command('presets').description('named pipelines stored on the master, which jobs name with --preset');

  presets
    .command('list', { isDefault: true })
    .description('every preset (the default)')
    .option('--json', 'print the answer of GET /v1/presets')
    .option('--master <url>', 'master URL')
    .action(async (options: { json?: boolean; master?: string }) => {
      const list = await (await clientFor(options.master)).json('/v1/presets', presetList);
      if (options.json) return printJson(list);
      if (list.presetsOnly) process.stdout.write('presets-only master: jobs must name one of these\n');
      if (list.presets.length === 0) return void process.stdout.write('no presets (dips presets put NAME --pipeline JSON)\n');
      process.stdout.write(
        `${formatTable(list.presets, [
          { heading: 'name', cell: (p) => p.name },
          { heading: 'steps', cell: (p) => p.pipeline.map((step) => String(step.op)).join(' → ') || '(format conversion)' },
          { heading: 'format', cell: (p) => p.format },
          { heading: 'description', cell: (p) => p.description },
        ])}\n`,
      );
    });

  presets
    .command('show')
    .description('one preset as JSON (a file `dips presets put --file` takes)')
    .argument('<name>')
    .option('--master <url>', 'master URL')
    .action(async (name: string, options: { master?: string }) => {
      const { name: _name, updatedAt: _updated, ...body } = await (await clientFor(options.master)).json(`/v1/presets/${encodeURIComponent(name)}`, preset);
      printJson(body);
    });

  presets
    .command('put')
    .description('create or replace a preset')
    .argument('<name>', 'lower-case letters, digits, ".", "_", "-"')
    .option('--file <file>', 'a JSON file: {"pipeline": [...], "description"?, "format"?, "quality"?, "options"?}')
    .option('--pipeline <json>', 'steps, e.g. \'[{"op":"resize","width":320}]\'')
    .option('--description <text>', 'what the preset is for')
    .addOption(formatOption("the job's, else the input's"))
    .addOption(qualityOption())
    .option('--options <json>', 'output options, e.g. \'{"metadata":"icc","progressive":true}\' (GET /v1/operations: outputOptions)')
    .option('--master <url>', 'master URL')
    .action(async (name: string, flags: PutFlags & { master?: string }) => {
      const response = await (await clientFor(flags.master)).request(`/v1/presets/${encodeURIComponent(name)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(await presetBodyFrom(flags)),
      });
      process.stdout.write(`preset ${name} ${response.status === 201 ? 'created' : 'replaced'}\n`);
    });

  presets
    .command('delete')
    .description('delete a preset')
    .argument('<name>')
    .option('--master <url>', 'master URL')
    .action(async (name: string, options: { master?: string }) => {
      await (await clientFor(options.master)).request(`/v1/presets/${encodeURIComponent(name)}`, { method: 'DELETE' });
      process.stdout.write(`preset ${name} deleted\n`);
    });

  program
    .command('duplicates')
    .description('the items of a job (with a phash step) whose perceptual hashes are close: near-identical pictures')
    .argument('<id>', 'job id')
    .option('--json', 'print the answer of GET /v1/jobs/{id}/duplicates')
    .option('--master <url>', 'master URL')
    .action(async (id: string, options: { json?: boolean; master?: string }) => {
      const report = await (await clientFor(options.master)).json(`/v1/jobs/${encodeURIComponent(id)}/duplicates`, duplicatesReport);
      if (options.json) return printJson(report);
      if (report.groups.length === 0) return void process.stdout.write(`no duplicates (no two items within ${report.threshold} bits)\n`);
      for (const [number, group] of report.groups.entries()) {
        process.stdout.write(`group ${number + 1}\n${formatTable(group.items, [
          { heading: '#', cell: (item) => item.index, align: 'right' },
          { heading: 'name', cell: (item) => item.name },
          { heading: 'phash', cell: (item) => item.phash },
          { heading: 'bits apart', cell: (item) => item.distance, align: 'right' },
        ])}\n`);
      }
    });
}
