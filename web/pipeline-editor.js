import { h } from './dom.js';
import { createParamField } from './param-field.js';
import { describeParams, shortenDataUrls } from './params.js';

/**
 * The list of pipeline steps: add from the catalogue, remove, move up/down, one input per parameter.
 * Steps keep their DOM nodes when reordered, so typed values and focus survive a move.
 */
export function createPipelineEditor({ list, picker, addButton, pickerHint, preview, previewNote }) {
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
    const fields = describeParams(operation).map((spec) => createParamField(spec, { onChange: changed }));
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
      for (const field of step.fields) field.setContext(`Step ${index + 1} (${step.operation.name}): `);
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
        const result = showErrors ? field.check() : field.read();
        if (result.error) errors.push({ input: field.input, message: `Step ${index + 1} (${step.operation.name}): ${result.error}` });
        else if (result.value !== undefined) entry[field.spec.name] = result.value;
      }
      return entry;
    });
    return { pipeline, errors };
  }

  /**
   * Keeps the JSON preview (what `dips submit --pipeline` would take) in step with the form. Overlay
   * data URLs run to a megabyte: the preview shows their start and length, and says so.
   */
  function changed() {
    const { pipeline } = collect();
    preview.textContent = JSON.stringify(shortenDataUrls(pipeline));
    previewNote.hidden = preview.textContent.length === JSON.stringify(pipeline).length;
  }

  picker.addEventListener('change', showPickerHint);
  addButton.addEventListener('click', () => {
    const step = addStep(picker.value);
    (step?.fields[0]?.input ?? addButton).focus();
  });

  return { setOperations, collect, count: () => steps.length };
}
