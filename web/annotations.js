/**
 * What analysis steps found in an image (images[].annotations): the perceptual hash, the ThumbHash as
 * the placeholder it decodes to, the input's metadata as a table with GPS flagged, QR texts, and any
 * other op's annotation as JSON. Plus the job's duplicates report (GET /v1/jobs/{id}/duplicates).
 */
import { h } from './dom.js';
// The thumbhash package's own decoder, served by the master from its node_modules.
import { thumbHashToDataURL } from './vendor/thumbhash.js';

const bytesOf = (base64) => Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));

/** The placeholder a ThumbHash decodes to (about 32 px on its long side), or null if it does not decode. */
function placeholderOf(base64) {
  try {
    return thumbHashToDataURL(bytesOf(base64));
  } catch {
    return null;
  }
}

const row = (name, value) => h('tr', {}, h('th', { scope: 'row' }, name), h('td', {}, value));
const coordinate = (value) => value.toFixed(5);

/** The metadata op's report (services/image-core/source-metadata.ts SourceMetadata) as a small table. */
function metadataTable(meta) {
  const rows = [];
  if (meta.format) rows.push(row('format', meta.format));
  if (meta.width && meta.height) rows.push(row('size', `${meta.width} × ${meta.height}`));
  if (meta.channels) rows.push(row('channels', `${meta.channels}${meta.hasAlpha ? ' (with alpha)' : ''}`));
  if (meta.space) rows.push(row('colour space', meta.space));
  if (meta.orientation) rows.push(row('orientation', String(meta.orientation)));
  rows.push(row('ICC profile', meta.iccProfile ?? 'none'));
  if (meta.gps !== undefined) {
    rows.push(h('tr', { class: meta.gps ? 'gps-flag' : undefined, 'data-field': 'gps' },
      h('th', { scope: 'row' }, 'GPS'),
      h('td', {}, meta.gps
        ? [h('span', { class: 'badge badge-failed' }, 'location in file'), meta.location ? ` ${coordinate(meta.location.latitude)}, ${coordinate(meta.location.longitude)}` : '']
        : 'none')));
  }
  if (meta.source === 'unavailable') rows.push(row('source', 'the input file was not available to this step: pixel facts only'));
  const exifTags = Object.entries(meta.exif ?? {}).flatMap(([group, tags]) => Object.entries(tags).map(([tag, value]) => [`${group}.${tag}`, String(value)]));
  return [
    h('table', { class: 'annotation-table' }, h('caption', {}, 'Metadata'), h('tbody', {}, rows)),
    exifTags.length === 0
      ? null
      : h('details', { class: 'exif-tags' },
          h('summary', {}, `EXIF tags (${exifTags.length})`),
          h('table', { class: 'annotation-table' }, h('tbody', {}, exifTags.map(([tag, value]) => row(tag, value))))),
  ];
}

/** Each annotation of one image, by op name; null when there are none. */
export function annotationsView(annotations, imageName) {
  const parts = [];
  for (const [op, value] of Object.entries(annotations ?? {})) {
    if (op === 'phash' && typeof value === 'string') {
      parts.push(h('p', { class: 'annotation', 'data-annotation': op }, h('span', { class: 'annotation-name' }, 'phash '), h('code', {}, value)));
    } else if (op === 'thumbhash' && typeof value === 'string') {
      const url = placeholderOf(value);
      parts.push(h('p', { class: 'annotation', 'data-annotation': op },
        h('span', { class: 'annotation-name' }, 'thumbhash '),
        url ? h('img', { class: 'thumbhash', src: url, alt: `ThumbHash placeholder of ${imageName}` }) : null,
        h('code', { class: 'thumbhash-text' }, value)));
    } else if (op === 'metadata' && value && typeof value === 'object') {
      parts.push(h('div', { class: 'annotation', 'data-annotation': op }, metadataTable(value)));
    } else if (op === 'qr' && Array.isArray(value)) {
      // QR texts have their own list on the card (from images[].qr or this annotation).
    } else {
      parts.push(h('div', { class: 'annotation', 'data-annotation': op }, h('span', { class: 'annotation-name' }, `${op} `), h('code', {}, JSON.stringify(value))));
    }
  }
  return parts.length ? parts : null;
}

/** Whether any image of a job view has a perceptual hash, so the job has a duplicates report. */
export const hasPhash = (images) => images.some((image) => typeof image.annotations?.phash === 'string');

/** The duplicates report: groups of images whose perceptual hashes are within `threshold` bits. */
export function duplicatesView({ threshold, groups }) {
  const title = h('h4', {}, `Near-duplicates (phash within ${threshold} bits)`);
  if (groups.length === 0) return h('section', { class: 'duplicates' }, title, h('p', { class: 'muted' }, 'No two images are that close.'));
  return h('section', { class: 'duplicates' }, title,
    h('ol', { class: 'duplicate-groups' }, groups.map((group, index) => h('li', { 'aria-label': `Group ${index + 1}` },
      h('ul', {}, group.items.map((item, position) => h('li', { 'data-index': item.index },
        h('span', { class: 'duplicate-name' }, item.name), ' ',
        h('code', {}, item.phash),
        // distance: bits that differ from the group's first item.
        position === 0 ? null : h('span', { class: 'muted' }, ` ${item.distance} bit${item.distance === 1 ? '' : 's'} from ${group.items[0].name}`))))))));
}
