import { formatBytes, h } from './dom.js';
import { parseParam } from './params.js';

let nextFieldId = 1;
const TYPING_PAUSE_MS = 500;

/**
 * Checks a field once the user pauses typing (at once when an error is already shown, so it clears
 * as soon as it is fixed). Not on blur: a message appearing on blur shifts the layout under a
 * pointer on its way to the submit button and swallows the click.
 */
export function validateWhileTyping(check, errorShown) {
  let timer;
  return () => {
    clearTimeout(timer);
    if (errorShown()) check();
    else timer = setTimeout(check, TYPING_PAUSE_MS);
  };
}

/** Shows `message` under `input` (or clears it when undefined) and marks the input invalid for assistive technology. */
export function showFieldError(input, errorElement, message) {
  errorElement.hidden = !message;
  errorElement.textContent = message ?? '';
  input.setAttribute('aria-invalid', String(Boolean(message)));
}

/**
 * One labelled input for a parameter described by params.js describeParam (a pipeline step's or an
 * output option's), with its hint and error message. `read()` gives { value } (undefined = left out)
 * or { error }; `check()` does the same and shows the message. `onChange` runs on every edit.
 */
export function createParamField(spec, { onChange }) {
  const id = `param-${nextFieldId++}`;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const common = { id, name: spec.name, 'aria-describedby': `${hintId} ${errorId}` };
  const error = h('p', { id: errorId, class: 'field-error', hidden: true });
  let input;
  let extra = null;
  let readRaw = () => input.value;
  if (spec.control === 'image') {
    const image = createImageInput(spec, common, () => {
      check();
      onChange();
    });
    input = image.input;
    extra = image.preview;
    readRaw = image.read;
  } else if (spec.control === 'checkbox') {
    input = h('input', { ...common, type: 'checkbox', checked: spec.initial === true });
    readRaw = () => input.checked;
  } else if (spec.control === 'select') {
    input = h('select', common, spec.required ? null : h('option', { value: '' }, '(default)'), spec.choices.map((choice) => h('option', { value: choice }, String(choice))));
    input.value = String(spec.initial);
  } else if (spec.control === 'json') input = h('textarea', { ...common, rows: 3, spellcheck: false, value: spec.initial });
  else if (spec.control === 'multiline') input = h('textarea', { ...common, rows: 2, value: spec.initial });
  else if (spec.control === 'number') input = h('input', { ...common, type: 'number', inputMode: 'decimal', min: spec.min, max: spec.max, step: spec.step, value: spec.initial });
  else if (spec.control === 'colour') input = h('input', { ...common, type: 'color', value: spec.initial || '#000000' });
  else {
    const listId = `${id}-choices`;
    input = h('input', { ...common, type: 'text', list: spec.choices.length ? listId : undefined, value: spec.initial });
    if (spec.choices.length) extra = h('datalist', { id: listId }, spec.choices.map((choice) => h('option', { value: choice })));
  }
  // Several steps may have a "width": screen readers hear which step a field belongs to.
  const context = h('span', { class: 'visually-hidden' });
  const row = h(
    'div',
    { class: `param param-${spec.control}` },
    h('label', { for: id }, context, spec.name),
    input,
    extra,
    h('p', { id: hintId, class: 'hint' }, [spec.description, spec.hint].filter(Boolean).join(' — ')),
    error,
  );

  function read() {
    if (input.validity.badInput) return { error: `${spec.name} must be a number; what was typed is not one` };
    const raw = readRaw();
    return raw && typeof raw === 'object' && 'error' in raw ? raw : parseParam(spec, raw);
  }

  function check() {
    const result = read();
    showFieldError(input, error, result.error);
    return result;
  }

  if (spec.control !== 'image') {
    input.addEventListener('input', validateWhileTyping(check, () => !error.hidden));
    input.addEventListener('input', onChange);
  }
  return { spec, input, error, row, read, check, setContext: (text) => { context.textContent = text; } };
}

/** What a file input holds, for the message when it is refused. */
const typeNames = (types) => types.map((type) => type.slice('image/'.length).toUpperCase()).join(', ');

/**
 * A file input for a data-URL parameter (composite's overlay): the chosen file is checked against the
 * types and size the schema allows, read into a data URL and shown as a thumbnail with its size.
 * `read()` gives the data URL ('' when none is chosen) or { error } when the file was refused.
 */
function createImageInput(spec, common, onRead) {
  const input = h('input', { ...common, type: 'file', accept: spec.accept.join(',') });
  const thumbnail = h('img', { alt: '', class: 'overlay-thumbnail' });
  const caption = h('span', { class: 'overlay-caption' });
  const preview = h('div', { class: 'overlay-preview', hidden: true }, thumbnail, caption);
  let state = '';
  let reads = 0;

  async function load(file) {
    if (!spec.accept.includes(file.type)) return { error: `${spec.name} must be ${typeNames(spec.accept)} (${file.name} is ${file.type || 'of an unknown type'})` };
    if (spec.maxBytes !== undefined && file.size > spec.maxBytes) return { error: `${spec.name} must be at most ${formatBytes(spec.maxBytes)} (${file.name} is ${formatBytes(file.size)})` };
    const dataUrl = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
    thumbnail.src = dataUrl;
    try {
      await thumbnail.decode();
    } catch {
      return { error: `${spec.name} must be a readable image (${file.name} is not)` };
    }
    thumbnail.alt = `${spec.name}: ${file.name}`;
    caption.textContent = `${file.name} · ${thumbnail.naturalWidth} × ${thumbnail.naturalHeight} · ${formatBytes(file.size)}`;
    return dataUrl;
  }

  input.addEventListener('change', async () => {
    const file = input.files?.[0];
    preview.hidden = true;
    thumbnail.removeAttribute('src');
    state = file ? { error: `${spec.name}: ${file.name} is still being read` } : '';
    const read = ++reads;
    if (file) {
      const loaded = await load(file).catch((error) => ({ error: `${spec.name}: ${file.name} could not be read (${error.message})` }));
      if (read !== reads) return; // another file was chosen meanwhile
      state = loaded;
      preview.hidden = typeof state !== 'string';
    }
    onRead();
  });
  return { input, preview, read: () => state };
}
