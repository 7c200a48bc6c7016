import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const WINDOW_MS = 5 * 60 * 1000;
const BIN_MS = 20 * 1000;
const BINS = WINDOW_MS / BIN_MS;
const WIDTH = 300;
const HEIGHT = 80;

const svg = (tag, attributes = {}) => {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
};

/**
 * Images finished over the last five minutes, one bar per 20 seconds, from a cumulative counter
 * sampled by the cluster poll. A counter that goes down (master restarted) starts afresh.
 */
export function createThroughputChart(container) {
  let lastCount = null;
  let firstSampleAt = null;
  /** { time, finished } per poll that saw the counter grow. */
  const increments = [];
  const bars = svg('g', { class: 'chart-bars' });
  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', class: 'chart', preserveAspectRatio: 'none' });
  chart.append(bars, svg('line', { x1: 0, y1: HEIGHT - 0.5, x2: WIDTH, y2: HEIGHT - 0.5, class: 'chart-axis' }));
  const scale = h('span', { class: 'chart-scale', 'aria-hidden': 'true' });
  const axis = h('div', { class: 'chart-axis-labels', 'aria-hidden': 'true' }, h('span', {}, '5 min ago'), h('span', {}, 'now'));
  const caption = h('p', { class: 'chart-caption' });
  container.replaceChildren(h('div', { class: 'chart-frame' }, scale, chart), axis, caption);

  function record(count, source, now = Date.now()) {
    if (lastCount !== null && count > lastCount) increments.push({ time: now, finished: count - lastCount });
    if (lastCount === null || count < lastCount) firstSampleAt = now;
    lastCount = count;
    while (increments.length > 0 && increments[0].time <= now - WINDOW_MS) increments.shift();
    draw(source, now);
  }

  function draw(source, now) {
    // Bins are aligned to the clock so a bar does not change as time passes, only when work finishes.
    const lastBinStart = Math.floor(now / BIN_MS) * BIN_MS;
    const firstBinStart = lastBinStart - (BINS - 1) * BIN_MS;
    const counts = new Array(BINS).fill(0);
    for (const { time, finished } of increments) {
      const bin = Math.floor((time - firstBinStart) / BIN_MS);
      if (bin >= 0) counts[bin] += finished;
    }
    const peak = Math.max(1, ...counts);
    const barWidth = WIDTH / BINS;
    bars.replaceChildren(
      ...counts.map((finished, bin) => {
        const height = ((HEIGHT - 14) * finished) / peak;
        return svg('rect', { x: (bin * barWidth + 1).toFixed(1), y: (HEIGHT - height).toFixed(1), width: (barWidth - 2).toFixed(1), height: height.toFixed(1) });
      }),
    );
    const total = counts.reduce((sum, finished) => sum + finished, 0);
    const lastMinute = increments.filter(({ time }) => time > now - 60_000).reduce((sum, { finished }) => sum + finished, 0);
    // The counter is sampled from page load: before five minutes have passed, say so instead of implying more.
    const observedMinutes = Math.max(1, Math.round((now - firstSampleAt) / 60_000));
    const span = now - firstSampleAt < WINDOW_MS ? `since this page started counting (${observedMinutes} min)` : 'in the last 5 min';
    const summary = `${total} image${total === 1 ? '' : 's'} finished ${span}, ${lastMinute} of them in the last minute`;
    chart.setAttribute('aria-label', `Throughput, one bar per 20 seconds: ${summary}`);
    scale.textContent = `max ${peak} per 20 s`;
    caption.textContent = `${summary} (${source}).`;
  }

  return { record };
}
