import { annotationsView, duplicatesView, hasPhash } from './annotations.js';
import { ApiError, apiFetch, getJson, storedToken } from './api.js';
import { createCompareView } from './compare.js';
import { announce, formatAge, h, saveBlob } from './dom.js';
import { forgetJob, loadJobs, rememberJob } from './job-store.js';
import { shortenDataUrls } from './params.js';
import { readEventStream } from './sse.js';
import { submitThroughSession } from './upload.js';
import { duplicatesReport, isTerminalStatus, itemsPage, jobsPage, jobView, retryAccepted } from './protocol.js';

/** Browsers allow 6 HTTP/1.1 connections per host; leave most for everything else. */
const MAX_EVENT_STREAMS = 3;
const POLL_INTERVAL_MS = 1000;
const MAX_POLL_INTERVAL_MS = 8000;
/** While events carry only totals, per-image states are fetched at most this often. */
const DETAIL_REFRESH_MS = 1000;
const EXTENSIONS = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'image/tiff': 'tiff', 'image/avif': 'avif' };

export const shortId = (id) => (id.length > 12 ? id.slice(0, 8) : id);
const describeStep = ({ op, ...params }) => {
  const values = Object.entries(params).map(([name, value]) => `${name} ${JSON.stringify(value)}`);
  return values.length ? `${op} (${values.join(', ')})` : op;
};
/** Waits ms, or less if the job is removed meanwhile. */
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });

/** The jobs panel: submit, follow progress (SSE, else polling), show results, cancel, download. */
export function createJobList({ container, compareDialog }) {
  const jobs = new Map();
  let openStreams = 0;
  /** Why queued work cannot start now (the master's cluster summary), shown on queued jobs. */
  let waitingReason = '';
  const visibility = new IntersectionObserver((entries) => {
    for (const entry of entries) if (entry.isIntersecting) entry.target.dispatchEvent(new Event('dips:visible'));
  }, { rootMargin: '200px' });

  /**
   * A job of a pipeline, or of a preset (GET /v1/presets entry; sent by name). Format, quality and
   * options given with a preset override its own.
   */
  async function submit({ files, pipeline, preset, format, quality, options, webhook, onProgress, signal }) {
    const recipe = {
      ...(preset ? { preset: preset.name } : { pipeline }),
      ...(format ? { format } : {}),
      ...(quality !== undefined ? { quality } : {}),
      ...(options ? { options } : {}),
      ...(webhook ? { webhook } : {}),
    };
    const { id, status } = await submitThroughSession(files, recipe, { onProgress, signal });
    // Remembered in localStorage (a few MB per site): overlays are kept as their start only.
    const applied = { ...preset?.options, ...options };
    const entry = {
      id,
      submittedAt: Date.now(),
      pipeline: shortenDataUrls(preset?.pipeline ?? pipeline),
      preset: preset?.name,
      options: Object.keys(applied).length ? applied : undefined,
      format: format || preset?.format || 'same as input',
      names: files.map((file) => file.name),
      // Where the master reports the job's end: shown by host, as a reminder that something is listening.
      webhookHost: webhook ? new URL(webhook).host : undefined,
    };
    rememberJob(entry);
    const job = track(entry, files, { newest: true });
    render(job, {
      id,
      status,
      progress: { done: 0, total: files.length },
      images: files.map((file, index) => ({ index, name: file.name, status: 'queued' })),
    });
    follow(job);
    return job;
  }

  /** Jobs remembered from earlier visits: fetched again from the master, followed if still running. */
  function restore() {
    for (const entry of loadJobs()) follow(track(entry, [], { newest: false }));
  }

  function track(entry, files, { newest }) {
    const job = {
      entry,
      originals: files.map((file) => URL.createObjectURL(file)),
      snapshot: null,
      abort: new AbortController(),
      following: false,
      lastDetailRefresh: 0,
      images: new Map(),
      view: createJobView(entry),
    };
    job.view.cancelButton.addEventListener('click', () => cancel(job));
    job.view.archiveButton.addEventListener('click', () => downloadArchive(job));
    job.view.removeButton.addEventListener('click', () => remove(job));
    jobs.set(entry.id, job);
    if (newest) container.prepend(job.view.card);
    else container.append(job.view.card);
    container.dataset.empty = 'false';
    return job;
  }

  async function follow(job) {
    if (job.following) return;
    job.following = true;
    const { signal } = job.abort;
    try {
      if (openStreams < MAX_EVENT_STREAMS) {
        openStreams += 1;
        try {
          await readEventStream(`/v1/jobs/${encodeURIComponent(job.entry.id)}/events`, { signal, onEvent: (event) => onEvent(job, event) });
        } catch (error) {
          if (signal.aborted) return;
          if (error instanceof ApiError && error.status === 404) return showGone(job);
          // No usable event stream (a proxy, an older master): polling below does the same job.
        } finally {
          openStreams -= 1;
        }
      }
      let delay = POLL_INTERVAL_MS;
      while (!signal.aborted) {
        try {
          await refresh(job);
          delay = POLL_INTERVAL_MS;
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) return showGone(job);
          showJobError(job, error.message);
          delay = Math.min(delay * 2, MAX_POLL_INTERVAL_MS);
        }
        if (isTerminalStatus(job.snapshot?.status)) return;
        await sleep(delay, signal);
      }
    } finally {
      job.following = false;
    }
  }

  async function refresh(job) {
    job.lastDetailRefresh = Date.now();
    const snapshot = await getJson(`/v1/jobs/${encodeURIComponent(job.entry.id)}`, jobView, { signal: job.abort.signal });
    showJobError(job, '');
    render(job, snapshot);
  }

  /** Events carry the job's progress (the whole job or a part of it); anything else triggers a fetch. */
  function onEvent(job, { data }) {
    let update = null;
    try {
      const parsed = jobView.safeParse(JSON.parse(data));
      if (parsed.success) update = parsed.data;
    } catch {
      // not JSON: fetched below
    }
    if (update) render(job, { ...job.snapshot, ...update });
    const hasImageDetail = Array.isArray(update?.images);
    if (!hasImageDetail && Date.now() - job.lastDetailRefresh >= DETAIL_REFRESH_MS) {
      refresh(job).catch(() => {
        // The event stream keeps the job current; a failed detail fetch is retried on the next event.
      });
    }
  }

  function render(job, snapshot) {
    const previousStatus = job.snapshot?.status;
    job.snapshot = snapshot;
    const { view } = job;
    const status = snapshot.status ?? 'unknown';
    const images = snapshot.images ?? [];
    const total = snapshot.progress?.total ?? images.length;
    // Canceled images were not processed: the count says what really ran (from the images when listed).
    const canceled = images.filter((image) => image.status === 'canceled').length;
    const done = images.length > 0 ? images.filter((image) => image.status === 'succeeded' || image.status === 'failed').length : snapshot.progress?.done ?? 0;
    const percent = total > 0 ? Math.round((done / total) * 100) : 0;
    view.card.dataset.status = status;
    view.badge.textContent = status;
    view.badge.className = `badge badge-${status}`;
    view.progress.setAttribute('aria-valuenow', String(percent));
    view.progress.setAttribute('aria-valuetext', `${percent}% (${done} of ${total} images)`);
    view.bar.style.width = `${percent}%`;
    view.progressText.textContent = `${done} of ${total} image${total === 1 ? '' : 's'} done · ${percent}%${canceled ? ` · ${canceled} canceled` : ''}`;
    view.waiting.hidden = !(status === 'queued' && waitingReason);
    view.waiting.textContent = waitingReason ? `Waiting: ${waitingReason}` : '';
    view.cancelButton.hidden = isTerminalStatus(status);
    view.archiveButton.hidden = !(isTerminalStatus(status) && images.some((image) => image.status === 'succeeded'));
    for (const image of images) renderImage(job, image);
    if (isTerminalStatus(status) && !job.duplicates && hasPhash(images)) showDuplicates(job);
    if (previousStatus && previousStatus !== status && isTerminalStatus(status)) {
      announce(`Job ${shortId(snapshot.id ?? job.entry.id)} ${status}.`);
    }
  }

  function renderImage(job, image) {
    let item = job.images.get(image.index);
    if (!item) {
      item = createImageView(job, image);
      job.images.set(image.index, item);
      job.view.imageList.append(item.element);
    }
    const status = image.status ?? 'unknown';
    item.image = image;
    item.element.dataset.status = status;
    item.badge.textContent = status;
    item.badge.className = `badge badge-${status}`;
    item.size.textContent = image.width && image.height ? `${image.width} × ${image.height}` : '';
    item.error.hidden = !image.error;
    item.error.textContent = image.error ? `Error: ${image.error}` : '';
    const texts = image.annotations?.qr ?? image.qr ?? [];
    item.qr.hidden = texts.length === 0;
    item.qrList.replaceChildren(...texts.map((text) => h('li', {}, h('q', {}, text))));
    const annotations = JSON.stringify(image.annotations ?? {});
    if (annotations !== item.shownAnnotations) {
      item.shownAnnotations = annotations;
      const parts = annotationsView(image.annotations, item.name);
      item.annotations.hidden = !parts;
      item.annotations.replaceChildren(...(parts ?? []));
    }
    const succeeded = status === 'succeeded';
    item.downloadButton.hidden = !succeeded;
    item.enlargeButton.hidden = !succeeded;
    if (succeeded && !item.result && item.visible) showResult(job, item);
  }

  function createImageView(job, image) {
    const name = image.name ?? `image ${image.index + 1}`;
    const originalUrl = job.originals[image.index];
    const preview = h('div', { class: 'preview' }, originalUrl ? h('img', { src: originalUrl, alt: `${name}, original`, decoding: 'async', loading: 'lazy' }) : h('span', { class: 'preview-placeholder' }, 'no preview'));
    const item = {
      name,
      image,
      originalUrl,
      preview,
      result: null,
      visible: false,
      badge: h('span', { class: 'badge' }),
      size: h('span', { class: 'muted image-size' }),
      error: h('p', { class: 'image-error', hidden: true }),
      qrList: h('ul', { class: 'qr-list' }),
      annotations: h('div', { class: 'annotations', hidden: true }),
      shownAnnotations: '{}',
      downloadButton: h('button', { type: 'button', class: 'secondary', hidden: true }, 'Download'),
      enlargeButton: h('button', { type: 'button', class: 'secondary', hidden: true }, 'Compare'),
    };
    item.qr = h('div', { class: 'qr', hidden: true }, h('p', { class: 'qr-title' }, 'QR codes found'), item.qrList);
    item.downloadButton.setAttribute('aria-label', `Download result of ${name}`);
    item.enlargeButton.setAttribute('aria-label', `Compare ${name} before and after, large`);
    // A failed fetch has already put its message on the card (loadResult).
    item.downloadButton.addEventListener('click', () => downloadImage(job, item).catch(() => {}));
    item.enlargeButton.addEventListener('click', () => openComparison(job, item).catch(() => {}));
    item.element = h(
      'li',
      { class: 'image-card' },
      preview,
      h('div', { class: 'image-info' },
        h('p', { class: 'image-name', title: name }, name),
        h('div', { class: 'image-meta' }, item.badge, item.size),
        item.error,
        item.qr,
        item.annotations,
        h('div', { class: 'image-actions' }, item.downloadButton, item.enlargeButton)),
    );
    // Results are fetched only once their card scrolls into view: a 500-image job stays light.
    item.element.addEventListener('dips:visible', () => {
      item.visible = true;
      visibility.unobserve(item.element);
      if (item.image.status === 'succeeded' && !item.result) showResult(job, item);
    });
    visibility.observe(item.element);
    return item;
  }

  function resultPath(job, item) {
    return `/v1/jobs/${encodeURIComponent(job.entry.id)}/images/${item.image.index}`;
  }

  /** Fetches a result once (with the token if any) and keeps it as a blob URL for preview and download. */
  function loadResult(job, item) {
    item.result ??= apiFetch(resultPath(job, item), { signal: job.abort.signal })
      .then(async (response) => {
        const blob = await response.blob();
        const url = URL.createObjectURL(blob);
        item.preview.replaceChildren(createCompareView({ originalUrl: item.originalUrl, resultUrl: url, name: item.name }));
        return { blob, url };
      })
      .catch((error) => {
        item.result = null;
        if (!job.abort.signal.aborted) {
          item.error.hidden = false;
          item.error.textContent = `Could not load the result: ${error.message}`;
        }
        throw error;
      });
    return item.result;
  }

  /** Loads the result into the card's preview; a failure is already shown on the card. */
  function showResult(job, item) {
    loadResult(job, item).catch(() => {});
  }

  async function downloadImage(job, item) {
    const { blob } = await loadResult(job, item);
    const stem = item.name.replace(/\.[^.]+$/, '');
    saveBlob(blob, `${stem}.${EXTENSIONS[blob.type] ?? 'bin'}`);
  }

  async function openComparison(job, item) {
    const { url } = await loadResult(job, item);
    compareDialog.querySelector('.dialog-title').textContent = item.name;
    compareDialog.querySelector('.dialog-body').replaceChildren(createCompareView({ originalUrl: item.originalUrl, resultUrl: url, name: item.name, large: true }));
    compareDialog.showModal();
  }

  /** Fetches the job's duplicates report once it has finished with perceptual hashes. */
  function showDuplicates(job) {
    job.duplicates = getJson(`/v1/jobs/${encodeURIComponent(job.entry.id)}/duplicates`, duplicatesReport, { signal: job.abort.signal })
      .then((report) => job.view.duplicates.replaceChildren(duplicatesView(report)))
      .catch((error) => {
        if (!job.abort.signal.aborted) job.view.duplicates.replaceChildren(h('p', { class: 'job-error' }, `Could not load the duplicates report: ${error.message}`));
      })
      .finally(() => {
        job.view.duplicates.hidden = false;
      });
  }

  async function downloadArchive(job) {
    const path = `/v1/jobs/${encodeURIComponent(job.entry.id)}/archive`;
    const fileName = `dips-${shortId(job.entry.id)}.zip`;
    try {
      if (storedToken()) {
        // A link cannot carry the Authorization header, so the zip comes through fetch.
        saveBlob(await (await apiFetch(path)).blob(), fileName);
      } else {
        const link = h('a', { href: path, download: fileName, hidden: true });
        document.body.append(link);
        link.click();
        link.remove();
      }
    } catch (error) {
      showJobError(job, `Could not download the archive: ${error.message}`);
    }
  }

  async function cancel(job) {
    job.view.cancelButton.disabled = true;
    try {
      await apiFetch(`/v1/jobs/${encodeURIComponent(job.entry.id)}`, { method: 'DELETE' });
      await refresh(job);
    } catch (error) {
      showJobError(job, `Could not cancel: ${error.message}`);
    } finally {
      job.view.cancelButton.disabled = false;
    }
  }

  function remove(job) {
    job.abort.abort();
    forgetJob(job.entry.id);
    jobs.delete(job.entry.id);
    for (const item of job.images.values()) {
      visibility.unobserve(item.element);
      item.result?.then(({ url }) => URL.revokeObjectURL(url), () => {});
    }
    job.originals.forEach((url) => URL.revokeObjectURL(url));
    const next = job.view.card.nextElementSibling ?? job.view.card.previousElementSibling;
    job.view.card.remove();
    container.dataset.empty = String(jobs.size === 0);
    (next?.querySelector('button:not([hidden])') ?? document.getElementById('submit-button')).focus();
  }

  function showGone(job) {
    job.view.badge.textContent = 'unknown to the master';
    job.view.badge.className = 'badge badge-failed';
    job.view.cancelButton.hidden = true;
    showJobError(job, 'The master no longer knows this job (its data may have been removed).');
  }

  function showJobError(job, message) {
    job.view.error.hidden = !message;
    job.view.error.textContent = message;
  }

  /** Images finished by the jobs on this page; the throughput chart's fallback source. */
  function finishedImages() {
    let count = 0;
    for (const job of jobs.values()) count += job.snapshot?.progress?.done ?? 0;
    return count;
  }

  function setWaitingReason(reason) {
    waitingReason = reason ?? '';
    for (const job of jobs.values()) if (job.snapshot) render(job, job.snapshot);
  }

  return { submit, restore, finishedImages, setWaitingReason };
}

function createJobView(entry) {
  const titleId = `job-${entry.id}-title`;
  const steps = Array.isArray(entry.pipeline) ? entry.pipeline.map(describeStep).join(' → ') : '';
  const pipeline = entry.preset ? `preset ${entry.preset}${steps ? ` (${steps})` : ''}` : steps;
  const options = entry.options ? Object.entries(entry.options).map(([name, value]) => `${name} ${JSON.stringify(value)}`).join(', ') : '';
  const names = entry.names ?? [];
  const view = {
    badge: h('span', { class: 'badge' }, 'loading'),
    bar: h('div', { class: 'progress-bar' }),
    progressText: h('p', { class: 'progress-text' }),
    error: h('p', { class: 'job-error', role: 'alert', hidden: true }),
    waiting: h('p', { class: 'job-waiting', hidden: true }),
    cancelButton: h('button', { type: 'button', class: 'secondary danger' }, 'Cancel job'),
    archiveButton: h('button', { type: 'button', class: 'secondary', hidden: true }, 'Download all (.zip)'),
    removeButton: h('button', { type: 'button', class: 'link-button' }, 'Remove from list'),
    imageList: h('ul', { class: 'image-list' }),
    duplicates: h('div', { class: 'duplicates-report', hidden: true }),
  };
  view.progress = h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0, 'aria-labelledby': titleId }, view.bar);
  view.removeButton.setAttribute('aria-label', `Remove from list: job ${shortId(entry.id)}`);
  view.card = h(
    'article',
    { class: 'job', id: `job-${entry.id}`, tabindex: -1, 'aria-labelledby': titleId, 'data-job-id': entry.id },
    h('header', { class: 'job-head' },
      h('h3', { id: titleId }, 'Job ', h('code', { title: entry.id }, shortId(entry.id))),
      view.badge),
    h('p', { class: 'job-meta muted' },
      [pipeline, `output ${entry.format ?? 'same as input'}${options ? ` (${options})` : ''}`, names.length ? `${names.length} image${names.length === 1 ? '' : 's'}` : null, entry.webhookHost ? `webhook to ${entry.webhookHost}` : null, entry.submittedAt ? `submitted ${new Date(entry.submittedAt).toLocaleString()}` : null]
        .filter(Boolean).join(' · ')),
    view.progress,
    view.progressText,
    view.waiting,
    view.error,
    h('div', { class: 'job-actions' }, view.cancelButton, view.archiveButton, view.removeButton),
    view.imageList,
    view.duplicates,
  );
  return view;
}

/** How often the list of the master's jobs is refreshed; the open job's failed items with it. */
const MASTER_JOBS_REFRESH_MS = 2000;
/** Failed items shown on a job page (the manifest has them all). */
const FAILED_ITEMS_SHOWN = 50;

/**
 * Every job the master holds (GET /v1/jobs), whoever submitted it, newest first. Opening one shows
 * its progress and failed items with their errors, a retry button and the manifest.
 */
export function createMasterJobs({ container }) {
  let openId = null;
  let timer = null;
  const table = h('table', { class: 'master-jobs-table' },
    h('caption', { class: 'visually-hidden' }, 'Jobs on this master'),
    h('thead', {}, h('tr', {}, ...['Job', 'Kind', 'Status', 'Done', 'Failed', 'Total', 'Created'].map((title) => h('th', { scope: 'col' }, title)))),
  );
  const body = h('tbody');
  table.append(body);
  const detail = h('div', { class: 'master-job-detail', hidden: true });
  const message = h('p', { class: 'field-error', hidden: true, role: 'alert' });
  container.append(message, table, detail);

  async function refresh() {
    try {
      const { jobs } = await getJson('/v1/jobs?limit=50', jobsPage);
      message.hidden = true;
      body.replaceChildren(...jobs.map((job) => h('tr', { 'data-job': job.id, 'data-status': job.status },
        h('td', {}, h('button', { type: 'button', class: 'link-button', onclick: () => open(job.id), 'aria-label': `Open job ${job.id}` }, shortId(job.id))),
        h('td', {}, job.kind),
        h('td', {}, h('span', { class: `badge badge-${job.status}` }, job.status)),
        h('td', {}, String(job.progress.done)),
        h('td', {}, String(job.progress.failed)),
        h('td', {}, String(job.progress.total)),
        h('td', {}, formatAge(job.createdAt)),
      )));
      if (openId) await renderDetail(openId);
    } catch (error) {
      message.textContent = `Cannot list the master's jobs: ${error.message}`;
      message.hidden = false;
    }
  }

  async function open(id) {
    openId = id;
    await renderDetail(id);
    detail.querySelector('h3')?.focus();
  }

  async function renderDetail(id) {
    const [job, failed] = await Promise.all([
      getJson(`/v1/jobs/${encodeURIComponent(id)}`, jobView),
      getJson(`/v1/jobs/${encodeURIComponent(id)}/items?status=failed&limit=${FAILED_ITEMS_SHOWN}`, itemsPage),
    ]);
    const { done, failed: failedCount, total, skipped = 0 } = job.progress;
    detail.hidden = false;
    detail.replaceChildren(
      h('h3', { tabindex: -1 }, `Job ${shortId(job.id)}`),
      h('p', { class: 'master-job-status' }, `${job.status}: ${done} done${skipped ? ` (${skipped} skipped, output already there)` : ''}, ${failedCount} failed, ${total} in all`),
      job.error ? h('p', { class: 'field-error' }, job.error) : null,
      h('div', { class: 'job-actions' },
        h('button', { type: 'button', class: 'secondary', disabled: failedCount === 0 && !job.error, onclick: () => retry(job.id) }, 'Retry failed items'),
        h('button', { type: 'button', class: 'secondary', onclick: () => downloadManifest(job.id) }, 'Download manifest'),
      ),
      failed.items.length === 0
        ? h('p', { class: 'muted' }, 'No failed items.')
        : h('table', { class: 'failed-items' },
            h('caption', {}, `Failed items${failedCount > failed.items.length ? ` (first ${failed.items.length} of ${failedCount})` : ''}`),
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Item'), h('th', { scope: 'col' }, 'Error'), h('th', { scope: 'col' }, 'Kind'))),
            h('tbody', {}, ...failed.items.map((item) => h('tr', {}, h('td', {}, item.name), h('td', {}, item.error ?? ''), h('td', {}, item.errorKind ?? '')))),
          ),
    );
  }

  async function retry(id) {
    try {
      const answer = await getJson(`/v1/jobs/${encodeURIComponent(id)}/retry`, retryAccepted, { method: 'POST' });
      announce(`Job ${shortId(id)}: ${answer.retried} failed item${answer.retried === 1 ? '' : 's'} re-queued.`);
      await refresh();
    } catch (error) {
      message.textContent = `Retry failed: ${error.message}`;
      message.hidden = false;
    }
  }

  async function downloadManifest(id) {
    const response = await apiFetch(`/v1/jobs/${encodeURIComponent(id)}/manifest`);
    saveBlob(await response.blob(), `manifest-${id}.jsonl`);
  }

  return {
    start() {
      void refresh();
      timer = setInterval(() => void refresh(), MASTER_JOBS_REFRESH_MS);
    },
    stop() {
      clearInterval(timer);
    },
  };
}
