import { closest, distance } from 'fastest-levenshtein';

/**
 * A typo is at most one edit per three letters (and one in a word of up to four) away from what was
 * meant: "blurr" (1 edit of 5), "widht" (2: a swap counts as two) and "greyscale" (1 of 9) find their
 * names; "sepia" (3 edits from "median") and "tint" (2 from "text" and "trim") find none.
 */
const mostEdits = (word: string): number => Math.max(1, Math.floor((word.length + 1) / 3));

/** The known name nearest to `word` when `word` is a likely typo of it (case aside), else undefined. */
export function likelyMeant(word: string, known: readonly string[]): string | undefined {
  if (known.length === 0 || word.length === 0) return undefined;
  const typed = word.toLowerCase();
  const lowered = known.map((name) => name.toLowerCase());
  const nearest = closest(typed, lowered);
  const meant = known[lowered.indexOf(nearest)];
  return distance(typed, nearest) <= mostEdits(word) && meant !== word ? meant : undefined;
}

/** ` (did you mean "x"?)` after the message that refuses an unknown name, when it is a likely typo of x; else nothing. */
export function didYouMean(word: string, known: readonly string[]): string {
  const meant = likelyMeant(word, known);
  return meant === undefined ? '' : ` (did you mean "${meant}"?)`;
}

/**
 * For unknown keys of an object: ` (did you mean "x"?)` for one, ` (did you mean "x" for "a", "y" for "b"?)`
 * for several, naming only those with a likely meant key; else nothing.
 */
export function keysMeant(keys: readonly string[], known: readonly string[]): string {
  const meant = keys.flatMap((key) => {
    const name = likelyMeant(key, known);
    return name === undefined ? [] : [keys.length === 1 ? `"${name}"` : `"${name}" for "${key}"`];
  });
  return meant.length > 0 ? ` (did you mean ${meant.join(', ')}?)` : '';
}
