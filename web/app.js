import { allowTokenPrompt, getJson, setTokenPrompt, storedToken, storeToken, tokenWasDeclined } from './api.js';
import { createClusterView } from './cluster.js';
import { createFilePicker } from './file-picker.js';
import { createJobList, createMasterJobs, shortId } from './jobs.js';
import { createOutputOptions } from './output-options.js';
import { showFieldError, validateWhileTyping } from './param-field.js';
import { createPipelineEditor } from './pipeline-editor.js';
import { describeParam, parseParam } from './params.js';
import { createPresets } from './presets.js';
import { formatBytes, h } from './dom.js';
import { operationList, webhookRefusal } from './protocol.js';
import { createTokenPrompt } from './token-dialog.js';

const $ = (id) => document.getElementById(id);
const LOSSLESS_FORMATS = new Set(['png']);
const qualityField = describeParam('quality', { type: 'integer', minimum: 1, maximum: 100 }, false);

setTokenPrompt(createTokenPrompt($('token-dialog')));
for (const button of document.querySelectorAll('[data-close-dialog]')) {
  button.addEventListener('click', () => button.closest('dialog').close());
}

const jobList = createJobList({ container: $('job-list'), compareDialog: $('compare-dialog') });
const filePicker = createFilePicker({
  input: $('file-input'),
  dropZone: $('drop-zone'),
  list: $('file-list'),
  summary: $('file-summary'),
  clearButton: $('clear-files'),
  message: $('file-message'),
});
const editor = createPipelineEditor({
  list: $('step-list'),
  picker: $('op-picker'),
  addButton: $('add-step'),
  pickerHint: $('op-hint'),
  preview: $('pipeline-preview'),
  previewNote: $('pipeline-preview-note'),
});
const outputOptions = createOutputOptions({ container: $('output-options') });
const presets = createPresets({
  row: $('preset-row'),
  picker: $('preset-picker'),
  hint: $('preset-hint'),
  deleteButton: $('delete-preset'),
  message: $('presets-error'),
  builder: $('pipeline-builder'),
  modeNote: $('presets-only-note'),
  save: { details: $('save-preset'), name: $('preset-name'), description: $('preset-description'), button: $('save-preset-button'), status: $('save-preset-status') },
  current: () => {
    const { pipeline, errors } = editor.collect({ showErrors: true });
    const output = collectOutput();
    return { pipeline, ...output, errors: [...errors, ...output.errors] };
  },
  onSelect: () => showFormErrors([]),
});
const cluster = createClusterView({
  line: $('cluster-line'),
  waiting: $('cluster-waiting'),
  summary: $('cluster-summary'),
  details: $('scaler-details'),
  detailsBody: $('scaler-body'),
  workersBody: $('workers-body'),
  workersNote: $('workers-note'),
  chartContainer: $('throughput'),
  status: $('connection'),
  fallbackFinishedImages: jobList.finishedImages,
  onWaiting: (reason) => jobList.setWaitingReason(reason),
});

/** The operations and, beside them, the output options' schema (GET /v1/operations); then the presets. */
async function loadOperations() {
  $('ops-error').hidden = true;
  void presets.load();
  try {
    const catalogue = await getJson('/v1/operations', operationList);
    editor.setOperations(catalogue.operations);
    outputOptions.setSchema(catalogue.outputOptions);
  } catch (error) {
    $('ops-error-text').textContent = `Could not load the operations: ${error.message}`;
    $('ops-error').hidden = false;
  }
}

/** "Change token" while one is in use, "Enter token" after the dialog was cancelled. */
function showTokenButton() {
  const button = $('token-button');
  button.hidden = !storedToken() && !tokenWasDeclined();
  button.textContent = storedToken() ? 'Change token' : 'Enter token';
}

function checkQuality() {
  const input = $('quality');
  const result = input.validity.badInput ? { error: 'quality must be a whole number from 1 to 100' } : parseParam(qualityField, input.value);
  showFieldError(input, $('quality-error'), result.error);
  return result;
}

/** Lists every problem above the submit button; each entry moves focus to the input at fault. */
function showFormErrors(errors) {
  const box = $('form-errors');
  box.hidden = errors.length === 0;
  if (errors.length === 0) return box.replaceChildren();
  box.replaceChildren(
    h('p', { class: 'form-errors-title' }, errors.length === 1 ? 'Please fix this before submitting:' : `Please fix these ${errors.length} problems before submitting:`),
    h('ul', {}, errors.map(({ input, message }) => h('li', {}, input ? h('a', { href: `#${input.id}`, onclick: (event) => { event.preventDefault(); input.focus(); } }, message) : message))),
  );
}

/** The webhook URL as typed (empty: none), checked as the master checks it. */
function checkWebhook() {
  const input = $('webhook');
  const value = input.value.trim();
  const error = value ? webhookRefusal(value) : undefined;
  showFieldError(input, $('webhook-error'), error);
  return { value: value || undefined, error };
}

/** Format, quality, output options and webhook as the form has them, with their problems. */
function collectOutput() {
  const format = $('format').value;
  const quality = LOSSLESS_FORMATS.has(format) ? { value: undefined } : checkQuality();
  const webhook = checkWebhook();
  const { options, errors } = outputOptions.collect();
  if (quality.error) errors.unshift({ input: $('quality'), message: quality.error });
  if (webhook.error) errors.push({ input: $('webhook'), message: webhook.error });
  return { format, quality: quality.value, options, webhook: webhook.value, errors };
}

async function submit(event) {
  event.preventDefault();
  const errors = [];
  // Files are checked by decoding them in the browser; the ones it cannot decode are flagged and left out.
  const files = await filePicker.checkedFiles();
  if (files.length === 0) errors.push({ input: $('file-input'), message: filePicker.count() > 0 ? 'None of the chosen files can be sent: remove the flagged ones and choose images.' : 'Choose at least one image.' });
  // A chosen preset replaces the steps; in presets-only mode there are no steps to build.
  const preset = presets.selected();
  let pipeline;
  if (!preset && presets.presetsOnly()) errors.push({ input: $('preset-picker'), message: 'Choose a preset: this master runs only its presets.' });
  else if (!preset) {
    if (editor.count() === 0) errors.push({ input: $('op-picker'), message: 'Add at least one pipeline step.' });
    const collected = editor.collect({ showErrors: true });
    pipeline = collected.pipeline;
    errors.push(...collected.errors);
  }
  const { format, quality, options, webhook, errors: outputErrors } = collectOutput();
  errors.push(...outputErrors);
  showFormErrors(errors);
  if (errors.length > 0) {
    (errors[0].input ?? $('form-errors')).focus();
    return;
  }
  const button = $('submit-button');
  const status = $('submit-status');
  button.disabled = true;
  status.textContent = '';
  const upload = new AbortController();
  const cancel = () => upload.abort();
  const noun = `${files.length} image${files.length === 1 ? '' : 's'}`;
  const showUpload = (sent, total) => {
    const percent = total > 0 ? Math.round((sent / total) * 100) : 0;
    $('upload-bar').value = percent;
    $('upload-text').textContent = `Uploading ${noun}: ${percent}% (${formatBytes(sent)} of ${formatBytes(total)})`;
  };
  showUpload(0, files.reduce((sum, file) => sum + file.size, 0));
  $('upload-progress').hidden = false;
  $('upload-cancel').addEventListener('click', cancel, { once: true });
  try {
    const job = await jobList.submit({ files, pipeline, preset, format, quality, options, webhook, onProgress: showUpload, signal: upload.signal });
    status.replaceChildren(`Job ${shortId(job.entry.id)} submitted. `, h('a', { href: `#job-${job.entry.id}` }, 'Follow its progress'));
  } catch (error) {
    if (error.name === 'AbortError') {
      status.textContent = 'Upload cancelled: nothing was submitted.';
    } else {
      showFormErrors([{ message: `The master did not accept the job: ${error.message}` }]);
      $('form-errors').focus();
    }
  } finally {
    $('upload-cancel').removeEventListener('click', cancel);
    $('upload-progress').hidden = true;
    button.disabled = false;
  }
}

$('job-form').addEventListener('submit', submit);
$('quality').addEventListener('input', validateWhileTyping(checkQuality, () => !$('quality-error').hidden));
$('webhook').addEventListener('input', validateWhileTyping(checkWebhook, () => !$('webhook-error').hidden));
$('format').addEventListener('change', () => {
  const lossless = LOSSLESS_FORMATS.has($('format').value);
  $('quality').disabled = lossless;
  $('quality-hint').textContent = lossless ? 'PNG is lossless: quality does not apply.' : '1–100 for lossy formats; empty for the encoder\'s default.';
});
$('ops-retry').addEventListener('click', () => {
  allowTokenPrompt();
  loadOperations();
});
$('token-button').addEventListener('click', () => {
  storeToken(null);
  allowTokenPrompt();
  loadOperations();
  cluster.refresh();
});
window.addEventListener('dips:token-state', showTokenButton);

showTokenButton();
loadOperations();
jobList.restore();
createMasterJobs({ container: $('master-jobs') }).start();
cluster.start();
