import { authHeaders, getJson } from './api.js';
import { formatAge, h } from './dom.js';
import { clusterAnswer } from './protocol.js';
import { createThroughputChart } from './throughput-chart.js';

const POLL_INTERVAL_MS = 3000;
/** The master's counter of finished images (all outcomes, one series per status label). */
const FINISHED_IMAGES_COUNTER = 'dips_images_total';
/** Shown as sentences above the tiles, not as tiles. */
const SENTENCE_FIELDS = new Set(['summary', 'waiting']);
const WORKER_COLUMNS = ['id', 'address', 'state', 'inflight', 'lastHeartbeat'];

/** "desiredCapacity" → "Desired capacity". */
const humanize = (key) => key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase()).replace(/ ([A-Z])(?=[a-z])/g, (_, c) => ` ${c.toLowerCase()}`);

const isTimestampKey = (key) => /(^at|At|[hH]eartbeat|[tT]ime)$/.test(key);

/** One value as text: timestamps as ages, lists comma-separated, nothing as a dash. */
function formatValue(key, value) {
  if (value === null || value === undefined || (Array.isArray(value) && value.length === 0)) return '—';
  if (isTimestampKey(key) && (typeof value === 'number' || !Number.isNaN(Date.parse(value)))) return formatAge(value);
  if (Array.isArray(value)) return value.map((item) => formatValue('', item)).join(', ');
  if (typeof value === 'object') return Object.entries(value).map(([name, inner]) => `${humanize(name)} ${formatValue(name, inner)}`).join(', ');
  return String(value);
}

const isRecord = (value) => Boolean(value) && typeof value === 'object' && !Array.isArray(value);

/** A field the master reports: plain values as text, objects (the scaler's status) as nested lists. */
function renderValue(key, value) {
  if (!isRecord(value)) return formatValue(key, value);
  return h(
    'dl',
    { class: 'details' },
    Object.entries(value).map(([name, inner]) => {
      const text = renderValue(name, inner);
      // Nested objects and long texts (a decision's reason) take a whole row.
      const wide = isRecord(inner) ? 'details-group' : text.length > 40 ? 'details-wide' : undefined;
      return h('div', { class: wide }, h('dt', {}, humanize(name)), h('dd', {}, text));
    }),
  );
}

/** Sum over all series of the finished-images counter in a Prometheus text exposition; null if absent. */
function finishedImagesFromMetrics(text) {
  const pattern = new RegExp(`^${FINISHED_IMAGES_COUNTER}(?:\\{[^}]*\\})?\\s+([0-9.eE+-]+)`, 'gm');
  // A labelled counter with no increments yet has only its # TYPE line: that still means 0.
  let total = text.includes(`# TYPE ${FINISHED_IMAGES_COUNTER} counter`) ? 0 : null;
  for (const match of text.matchAll(pattern)) total = (total ?? 0) + Number(match[1]);
  return total;
}

/**
 * The cluster panel: summary tiles (every top-level field the master reports), the workers table,
 * and the throughput chart. Polls while the page is visible.
 */
export function createClusterView({ line, waiting, summary, details, detailsBody, workersBody, workersNote, chartContainer, status, fallbackFinishedImages, onWaiting }) {
  const chart = createThroughputChart(chartContainer);
  let timer = null;
  let metricsAvailable = true;

  async function poll() {
    try {
      // Loose: fields this console does not know by name are shown too (as tiles or under the scaler's details).
      const cluster = await getJson('/v1/cluster', clusterAnswer.loose());
      render(cluster);
      status.textContent = 'Master connected';
      status.dataset.state = 'ok';
    } catch (error) {
      status.textContent = error.status === 401 ? 'Token needed' : 'Master unreachable';
      status.dataset.state = 'error';
      workersNote.textContent = `Cluster state unavailable: ${error.message}`;
    }
    await sampleThroughput();
  }

  async function sampleThroughput() {
    let count = null;
    if (metricsAvailable) {
      try {
        const response = await fetch('/metrics', { headers: authHeaders() });
        count = response.ok ? finishedImagesFromMetrics(await response.text()) : null;
      } catch {
        count = null;
      }
      metricsAvailable = count !== null;
    }
    if (count !== null) chart.record(count, "all clients: the master's /metrics counter, sampled by this page");
    else chart.record(fallbackFinishedImages(), 'only the jobs in this console');
  }

  /** A number gets a small tile; an object (say the scaler's status) a full-width one, a line per field. */
  function renderTile(key, value) {
    return h('div', { class: `tile ${isRecord(value) ? 'tile-detail' : ''}`, 'data-field': key }, h('dt', {}, humanize(key)), h('dd', {}, renderValue(key, value)));
  }

  /**
   * The master's summary ("3 workers, 40 s of work queued, adding 1") and why queued work waits, then a
   * tile per number; objects (the scaler's internals) fold away in a details element.
   */
  function render(cluster) {
    const workers = Array.isArray(cluster.workers) ? cluster.workers : [];
    line.textContent = cluster.summary ?? '';
    waiting.hidden = !cluster.waiting;
    waiting.textContent = cluster.waiting ? `Nothing can run now: ${cluster.waiting.replace('<master URL>', location.origin)}` : '';
    onWaiting?.(cluster.waiting?.replace('<master URL>', location.origin));
    const fields = Object.entries(cluster).filter(([key]) => key !== 'workers' && !SENTENCE_FIELDS.has(key));
    const tiles = [['workers', workers.length], ...fields.filter(([, value]) => !isRecord(value))];
    summary.replaceChildren(...tiles.map(([key, value]) => renderTile(key, value)));
    const internals = fields.filter(([, value]) => isRecord(value));
    details.hidden = internals.length === 0;
    detailsBody.replaceChildren(...internals.map(([key, value]) => h('div', { 'data-field': key }, h('h4', {}, humanize(key)), renderValue(key, value))));
    const extraColumns = [...new Set(workers.flatMap((worker) => Object.keys(worker)))].filter((key) => !WORKER_COLUMNS.includes(key));
    const head = workersBody.closest('table').querySelector('thead tr');
    head.replaceChildren(...[...WORKER_COLUMNS, ...extraColumns].map((key) => h('th', { scope: 'col' }, key === 'inflight' ? 'In flight' : humanize(key))));
    workersBody.replaceChildren(
      ...workers.map((worker) =>
        // data-label: on a narrow screen each row becomes a card whose cells name their column.
        h('tr', { 'data-worker-id': worker.id },
          h('th', { scope: 'row', 'data-label': 'Id' }, String(worker.id ?? '')),
          h('td', { 'data-label': 'Address' }, String(worker.address ?? '')),
          h('td', { 'data-label': 'State' }, h('span', { class: `badge badge-${worker.state}` }, String(worker.state ?? 'unknown'))),
          h('td', { class: 'number', 'data-label': 'In flight' }, String(worker.inflight ?? '')),
          h('td', { title: String(worker.lastHeartbeat ?? ''), 'data-label': 'Last heartbeat' }, formatValue('lastHeartbeat', worker.lastHeartbeat)),
          extraColumns.map((key) => h('td', { 'data-label': humanize(key) }, formatValue(key, worker[key])))),
      ),
    );
    workersNote.textContent = workers.length ? '' : `No workers registered yet. Start one with: dips worker --master ${location.origin}`;
  }

  function schedule() {
    clearTimeout(timer);
    if (document.visibilityState === 'visible') timer = setTimeout(() => poll().finally(schedule), POLL_INTERVAL_MS);
  }

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') poll().finally(schedule);
    else clearTimeout(timer);
  });

  return { start: () => poll().finally(schedule), refresh: poll };
}
