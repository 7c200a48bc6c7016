import { ApiError, apiFetch, getJson } from './api.js';
import { h } from './dom.js';
import { shortenDataUrls } from './params.js';
import { presetList } from './protocol.js';

const describeOutput = ({ format, quality, options }) =>
  [format ? `output ${format}` : null, quality !== undefined ? `quality ${quality}` : null, ...Object.entries(options ?? {}).map(([name, value]) => `${name} ${JSON.stringify(value)}`)]
    .filter(Boolean).join(', ');

/**
 * Named pipelines stored on the master (GET/PUT/DELETE /v1/presets): a picker that runs a job by
 * preset instead of the steps below it, "save these steps as a preset", and presets-only mode (the
 * master refuses ad-hoc pipelines: only the picker is shown). `current()` gives what would be saved:
 * { pipeline, format, quality, options, errors }.
 */
export function createPresets({ row, picker, hint, deleteButton, message, builder, modeNote, save, current, onSelect }) {
  let presets = [];
  let presetsOnly = false;

  async function load(selectName = picker.value) {
    message.hidden = true;
    try {
      ({ presets, presetsOnly } = await getJson('/v1/presets', presetList));
    } catch (error) {
      presets = [];
      // A master without presets (404) simply has none to offer.
      if (!(error instanceof ApiError && error.status === 404)) {
        message.textContent = `Could not load the presets: ${error.message}`;
        message.hidden = false;
      }
    }
    const none = presetsOnly
      ? h('option', { value: '' }, presets.length ? 'Choose a preset' : 'This master has no presets')
      : h('option', { value: '' }, 'None: build the pipeline below');
    picker.replaceChildren(none, ...presets.map((preset) => h('option', { value: preset.name }, preset.name)));
    picker.value = presets.some((preset) => preset.name === selectName) ? selectName : '';
    row.hidden = presets.length === 0 && !presetsOnly;
    modeNote.hidden = !presetsOnly;
    save.details.hidden = presetsOnly;
    show();
  }

  const selected = () => presets.find((preset) => preset.name === picker.value) ?? null;

  /** The chosen preset's steps and output in words; the step editor only when no preset is chosen. */
  function show() {
    const preset = selected();
    builder.hidden = presetsOnly || preset !== null;
    deleteButton.hidden = presetsOnly || preset === null;
    if (preset) deleteButton.setAttribute('aria-label', `Delete preset ${preset.name}`);
    hint.replaceChildren(...(preset
      ? [preset.description ? `${preset.description} — steps ` : 'Steps ', h('code', {}, JSON.stringify(shortenDataUrls(preset.pipeline))), describeOutput(preset) ? `; ${describeOutput(preset)}.` : '.']
      : []));
    onSelect(preset);
  }

  async function saveCurrent() {
    const name = save.name.value.trim();
    const { pipeline, format, quality, options, errors } = current();
    if (!name) errors.unshift({ input: save.name, message: 'Give the preset a name.' });
    if (pipeline.length === 0) errors.push({ message: 'Add at least one step to save as a preset.' });
    save.status.textContent = errors.map((error) => error.message).join(' ');
    if (errors.length) return (errors[0].input ?? save.name).focus();
    const description = save.description.value.trim();
    const body = { pipeline, ...(description ? { description } : {}), ...(format ? { format } : {}), ...(quality !== undefined ? { quality } : {}), ...(options ? { options } : {}) };
    save.button.disabled = true;
    try {
      const response = await apiFetch(`/v1/presets/${encodeURIComponent(name)}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      // The picker is refilled first: a choice made once the status says "choose it" is not reset by the refill.
      await load();
      save.status.textContent = `Preset ${name} ${response.status === 201 ? 'saved' : 'replaced'}: choose it above to run it.`;
    } catch (error) {
      save.status.textContent = `The master did not save the preset: ${error.message}`;
    } finally {
      save.button.disabled = false;
    }
  }

  async function deleteSelected() {
    const preset = selected();
    if (!preset) return;
    try {
      await apiFetch(`/v1/presets/${encodeURIComponent(preset.name)}`, { method: 'DELETE' });
      await load('');
      picker.focus();
    } catch (error) {
      message.textContent = `Could not delete preset ${preset.name}: ${error.message}`;
      message.hidden = false;
    }
  }

  picker.addEventListener('change', show);
  deleteButton.addEventListener('click', deleteSelected);
  save.button.addEventListener('click', saveCurrent);
  return { load, selected, presetsOnly: () => presetsOnly };
}
