import { h } from './dom.js';
import { describeParams, parseParam } from './params.js';

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

/**
 * The list of pipeline steps: add from the catalogue, remove, move up/down, one input per parameter.
 * Steps keep their DOM nodes when reordered, so typed values and focus survive a move.
 */
export function createPipelineEditor({ list, picker, addButton, pickerHint, preview }) {
  let operations = [];
  const steps = [];

  function setOperations(catalogue) {
    operations = catalogue;
    picker.replaceChildren(...catalogue.map((op) => h('option', { value: op.name }, op.name)));
    picker.disabled = addButton.disabled = catalogue.length === 0;
    showPickerHint();
  }

  function showPickerHint() {
    const op = operations.find((candidate) => candidate.name === picker.value);
    pickerHint.textContent = op ? `${op.description}${op.tileable ? '' : ' Runs on the whole image (not tiled).'}` : '';
  }

  function addStep(name) {
    const operation = operations.find((op) => op.name === name);
    if (!operation) return;
    const fields = describeParams(operation).map(createField);
    const title = h('h3', { class: 'step-title' });
    const upButton = h('button', { type: 'button', class: 'icon-button', onclick: () => move(step, -1) }, '↑');
    const downButton = h('button', { type: 'button', class: 'icon-button', onclick: () => move(step, 1) }, '↓');
    const removeButton = h('button', { type: 'button', class: 'icon-button danger', onclick: () => remove(step) }, '✕');
    const element = h(
      'li',
      { class: 'step' },
      h('div', { class: 'step-head' }, title, h('div', { class: 'step-actions' }, upButton, downButton, removeButton)),
      h('p', { class: 'step-description' }, operation.description),
      fields.length ? h('div', { class: 'step-params' }, fields.map((field) => field.row)) : h('p', { class: 'muted' }, 'No parameters.'),
    );
    const step = { operation, fields, element, title, upButton, downButton, removeButton };
    steps.push(step);
    list.append(element);
    refresh();
    return step;
  }

  function createField(spec) {
    const id = `param-${nextFieldId++}`;
    const hintId = `${id}-hint`;
    const errorId = `${id}-error`;
    const common = { id, name: spec.name, 'aria-describedby': `${hintId} ${errorId}` };
    let input;
    let choiceList = null;
    if (spec.control === 'checkbox') input = h('input', { ...common, type: 'checkbox', checked: spec.initial === true });
    else if (spec.control === 'select') {
      input = h('select', common, spec.required ? null : h('option', { value: '' }, '(default)'), spec.choices.map((choice) => h('option', { value: choice }, String(choice))));
      input.value = String(spec.initial);
    } else if (spec.control === 'json') input = h('textarea', { ...common, rows: 3, spellcheck: false, value: spec.initial });
    else if (spec.control === 'number') input = h('input', { ...common, type: 'number', inputMode: 'decimal', min: spec.min, max: spec.max, step: spec.step, value: spec.initial });
    else {
      const listId = `${id}-choices`;
      input = h('input', { ...common, type: 'text', list: spec.choices.length ? listId : undefined, value: spec.initial });
      if (spec.choices.length) choiceList = h('datalist', { id: listId }, spec.choices.map((choice) => h('option', { value: choice })));
    }
    const error = h('p', { id: errorId, class: 'field-error', hidden: true });
    // Several steps may have a "width": screen readers hear which step a field belongs to.
    const stepName = h('span', { class: 'visually-hidden' });
    const row = h(
      'div',
      { class: `param param-${spec.control}` },
      h('label', { for: id }, stepName, spec.name),
      input,
      choiceList,
      h('p', { id: hintId, class: 'hint' }, [spec.description, spec.hint].filter(Boolean).join(' — ')),
      error,
    );
    const field = { spec, input, error, row, stepName };
    input.addEventListener('input', validateWhileTyping(() => check(field), () => !error.hidden));
    input.addEventListener('input', changed);
    return field;
  }

  /** The field's value as typed: { value } (undefined = left out) or { error }. */
  function read({ input, spec }) {
    if (input.validity.badInput) return { error: `${spec.name} must be a number; what was typed is not one` };
    return parseParam(spec, spec.control === 'checkbox' ? input.checked : input.value);
  }

  /** Validates one field and shows or clears its message. */
  function check(field) {
    const { input, error } = field;
    const result = read(field);
    error.hidden = !result.error;
    error.textContent = result.error ?? '';
    input.setAttribute('aria-invalid', String(Boolean(result.error)));
    return result;
  }

  function move(step, offset) {
    const from = steps.indexOf(step);
    const to = from + offset;
    if (to < 0 || to >= steps.length) return;
    steps.splice(from, 1);
    steps.splice(to, 0, step);
    const focused = offset < 0 ? step.upButton : step.downButton;
    list.replaceChildren(...steps.map((s) => s.element));
    refresh();
    (focused.disabled ? (offset < 0 ? step.downButton : step.upButton) : focused).focus();
  }

  function remove(step) {
    const index = steps.indexOf(step);
    steps.splice(index, 1);
    step.element.remove();
    refresh();
    const neighbour = steps[Math.min(index, steps.length - 1)];
    (neighbour?.removeButton ?? picker).focus();
  }

  /** Renumbers steps, names their buttons and fields for screen readers, updates the JSON preview. */
  function refresh() {
    steps.forEach((step, index) => {
      const label = `step ${index + 1} (${step.operation.name})`;
      step.title.textContent = `${index + 1}. ${step.operation.name}`;
      step.upButton.disabled = index === 0;
      step.downButton.disabled = index === steps.length - 1;
      step.upButton.setAttribute('aria-label', `Move ${label} up`);
      step.downButton.setAttribute('aria-label', `Move ${label} down`);
      step.removeButton.setAttribute('aria-label', `Remove ${label}`);
      step.upButton.title = 'Move up';
      step.downButton.title = 'Move down';
      step.removeButton.title = 'Remove';
      for (const field of step.fields) field.stepName.textContent = `Step ${index + 1} (${step.operation.name}): `;
    });
    list.dataset.empty = String(steps.length === 0);
    changed();
  }

  /**
   * The pipeline as the API takes it, plus every problem found. With showErrors the messages are shown
   * next to their inputs; without, invalid values are just left out (for the live preview).
   */
  function collect({ showErrors = false } = {}) {
    const errors = [];
    const pipeline = steps.map((step, index) => {
      const entry = { op: step.operation.name };
      for (const field of step.fields) {
        const result = showErrors ? check(field) : read(field);
        if (result.error) errors.push({ input: field.input, message: `Step ${index + 1} (${step.operation.name}): ${result.error}` });
        else if (result.value !== undefined) entry[field.spec.name] = result.value;
      }
      return entry;
    });
    return { pipeline, errors };
  }

  /** Keeps the JSON preview (what `dips submit --pipeline` would take) in step with the form. */
  function changed() {
    preview.textContent = JSON.stringify(collect().pipeline);
  }

  picker.addEventListener('change', showPickerHint);
  addButton.addEventListener('click', () => {
    const step = addStep(picker.value);
    (step?.fields[0]?.input ?? addButton).focus();
  });

  return { setOperations, collect, count: () => steps.length };
}
