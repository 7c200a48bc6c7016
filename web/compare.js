import { h } from './dom.js';

/**
 * Before/after view: the result over the original, split by a slider (a range input, so it works
 * with arrow keys and screen readers). Without the original (after a reload the picked file is gone)
 * it is just the result.
 */
export function createCompareView({ originalUrl, resultUrl, name, large = false }) {
  const result = h('img', { src: resultUrl, alt: `${name}, processed`, decoding: 'async' });
  if (!originalUrl) return h('div', { class: `compare ${large ? 'compare-large' : ''}` }, result);
  const original = h('img', { src: originalUrl, alt: `${name}, original`, class: 'compare-original', decoding: 'async' });
  const view = h(
    'div',
    { class: `compare ${large ? 'compare-large' : ''}`, style: '--split: 50%' },
    result,
    original,
    h('span', { class: 'compare-label compare-label-before', 'aria-hidden': 'true' }, 'before'),
    h('span', { class: 'compare-label compare-label-after', 'aria-hidden': 'true' }, 'after'),
  );
  const slider = h('input', {
    type: 'range',
    min: 0,
    max: 100,
    value: 50,
    class: 'compare-slider',
    'aria-label': `Before/after split for ${name}: percent of the original shown`,
    oninput: (event) => view.style.setProperty('--split', `${event.target.value}%`),
  });
  view.append(slider);
  return view;
}
