import { describe, expect, it } from 'vitest';
import { didYouMean, likelyMeant } from '../../services/shared/suggest.js';

describe('likelyMeant', () => {
  const names = ['grayscale', 'blur', 'width', 'height', 'withoutEnlargement', 'text', 'trim', 'median'];

  it.each([
    ['blurr', 'blur'],
    ['greyscale', 'grayscale'],
    ['widht', 'width'],
    ['BLUR', 'blur'],
    ['withoutenlargment', 'withoutEnlargement'],
  ])('takes "%s" for "%s"', (typed, meant) => {
    expect(likelyMeant(typed, names)).toBe(meant);
  });

  it.each(['sepia', 'tint', 'x', 'blur', ''])('guesses nothing for "%s"', (typed) => {
    expect(likelyMeant(typed, names)).toBeUndefined();
  });

  it('guesses nothing among no names', () => {
    expect(likelyMeant('blur', [])).toBeUndefined();
  });
});

describe('didYouMean', () => {
  it('is the clause a refusal ends with, or nothing', () => {
    expect(didYouMean('piepline', ['pipeline', 'format', 'quality'])).toBe(' (did you mean "pipeline"?)');
    expect(didYouMean('colour', ['pipeline', 'format', 'quality'])).toBe('');
  });
});
