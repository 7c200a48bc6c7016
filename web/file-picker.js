import { formatBytes, h } from './dom.js';

/** Browsers do not decode TIFF, the master does: such files are sent without a preview. */
const isTiff = (file) => file.type === 'image/tiff' || /\.tiff?$/i.test(file.name);

/** Whether the browser can decode the file as an image (what a broken thumbnail would show too late). */
async function decodable(file) {
  if (isTiff(file)) return true;
  try {
    (await createImageBitmap(file)).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * The images to submit: chosen with the file input or dropped on the drop zone, listed with a
 * thumbnail, size and a remove button. Files that are not images are refused with a message; files
 * named as images that the browser cannot decode are flagged in the list and not sent.
 */
export function createFilePicker({ input, dropZone, list, summary, clearButton, message }) {
  const entries = [];

  function add(files) {
    const refused = [];
    for (const file of files) {
      if (!file.type.startsWith('image/') && !/\.(jpe?g|png|webp|tiff?|avif|gif)$/i.test(file.name)) {
        refused.push(file.name);
        continue;
      }
      const url = URL.createObjectURL(file);
      const removeButton = h('button', { type: 'button', class: 'icon-button danger', 'aria-label': `Remove ${file.name}`, title: 'Remove' }, '✕');
      const element = h(
        'li',
        { class: 'file' },
        h('img', { src: url, alt: '', loading: 'lazy', decoding: 'async' }),
        h('span', { class: 'file-name', title: file.name }, file.name),
        h('span', { class: 'muted file-size' }, formatBytes(file.size)),
        removeButton,
      );
      const entry = { file, url, element, decodable: decodable(file) };
      entry.decodable.then((ok) => {
        if (ok) return;
        element.dataset.flagged = 'true';
        element.querySelector('img').replaceWith(h('span', { class: 'file-flag', 'aria-hidden': 'true' }, '!'));
        element.querySelector('.file-name').after(h('span', { class: 'file-flag-text' }, 'not a readable image: will not be sent'));
        changed();
      });
      removeButton.addEventListener('click', () => remove(entry));
      entries.push(entry);
      list.append(element);
    }
    message.hidden = refused.length === 0;
    message.textContent = refused.length ? `Not added, not an image: ${refused.join(', ')}` : '';
    changed();
  }

  function remove(entry) {
    const index = entries.indexOf(entry);
    entries.splice(index, 1);
    URL.revokeObjectURL(entry.url);
    entry.element.remove();
    const neighbour = entries[Math.min(index, entries.length - 1)];
    (neighbour?.element.querySelector('button') ?? input).focus();
    changed();
  }

  function clear() {
    for (const entry of entries) {
      URL.revokeObjectURL(entry.url);
      entry.element.remove();
    }
    entries.length = 0;
    message.hidden = true;
    input.focus();
    changed();
  }

  function changed() {
    const bytes = entries.reduce((sum, entry) => sum + entry.file.size, 0);
    const flagged = list.querySelectorAll('[data-flagged]').length;
    summary.textContent = entries.length
      ? `${entries.length} image${entries.length === 1 ? '' : 's'}, ${formatBytes(bytes)}${flagged ? ` · ${flagged} flagged, not sent` : ''}`
      : 'No images chosen yet.';
    clearButton.hidden = entries.length === 0;
  }

  input.addEventListener('change', () => {
    add([...input.files]);
    // Clearing lets the same file be picked again after removing it.
    input.value = '';
  });
  clearButton.addEventListener('click', clear);
  for (const type of ['dragenter', 'dragover']) {
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.dataset.dragging = 'true';
    });
  }
  for (const type of ['dragleave', 'drop']) {
    dropZone.addEventListener(type, () => {
      delete dropZone.dataset.dragging;
    });
  }
  dropZone.addEventListener('drop', (event) => {
    event.preventDefault();
    add([...(event.dataTransfer?.files ?? [])]);
  });
  changed();

  /** The files to send: every chosen one the browser could decode. */
  async function checkedFiles() {
    const checked = await Promise.all(entries.map(async (entry) => ((await entry.decodable) ? entry.file : null)));
    return checked.filter(Boolean);
  }

  return { checkedFiles, count: () => entries.length };
}
