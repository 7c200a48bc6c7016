import express from 'express';
import { presetName, type PresetList } from '../protocol/presets.js';
import { HttpError } from '../shared/http-error.js';
import { didYouMean } from '../shared/suggest.js';
import type { Master } from './master.js';
import { fixedMenuRefusal, validatePresetBody } from './presets.js';

/** Largest PUT body: a preset whose composite step carries a watermark of about 1.4 MB (composite.ts). */
const maxPresetBody = '2mb';

/** GET/PUT/DELETE /v1/presets[/{name}] (README "Presets"); mounted on the token-guarded /v1 router. */
export function presetRoutes(master: Master): express.Router {
  const { presets, config } = master;
  const router = express.Router();

  router.get('/presets', (_req, res) => {
    const answer: PresetList = { presets: presets.list(), presetsOnly: presets.presetsOnly };
    res.json(answer);
  });

  router.get('/presets/:name', (req, res) => {
    res.json(presetOr404(master, req.params.name));
  });

  router.put('/presets/:name', express.json({ limit: maxPresetBody }), (req, res) => {
    const name = checkedName(req.params.name);
    if (presets.presetsOnly) throw fixedMenuRefusal();
    if (!req.is('application/json')) throw new HttpError(400, 'bad_preset', 'PUT /v1/presets/{name} takes a JSON body: {"pipeline": [...], "description"?, "format"?, "quality"?, "options"?}');
    const created = presets.put(name, validatePresetBody(req.body, config.maxPipelineSteps, `preset "${name}"`));
    res.status(created ? 201 : 200).location(`/v1/presets/${name}`).json(presets.get(name));
  });

  router.delete('/presets/:name', (req, res) => {
    if (presets.presetsOnly) throw fixedMenuRefusal();
    if (!presets.delete(checkedName(req.params.name))) throw presetNotFound(presets, req.params.name);
    res.status(204).end();
  });

  return router;
}

function checkedName(name: string): string {
  const parsed = presetName.safeParse(name);
  if (!parsed.success) throw new HttpError(400, 'bad_preset_name', `"${name}": ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

const presetNotFound = (presets: Master['presets'], name: string) =>
  new HttpError(404, 'preset_not_found', `no preset named "${name}"${didYouMean(name, presets.list().map((p) => p.name))}`);

function presetOr404(master: Master, name: string) {
  const preset = master.presets.get(name);
  if (!preset) throw presetNotFound(master.presets, name);
  return preset;
}
