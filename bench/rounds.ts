/**
 * How `npm run bench` repeats a measurement on this shared machine: each row runs `rounds` times, DIPS
 * and then plain sharp again (which is also the next round's "before"), each round against the mean of
 * the plain runs around it, and reports the medians. One run's ratio moved by 0.05 between runs minutes
 * apart (1.07-1.12x for the same build), more than the goals' margins; a single 100 MP round read 1.33x
 * at a load of 5 where the rounds before it read 1.05-1.22x.
 */
export const rounds = 3;

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** The median of each field over `items` (a field undefined in one is undefined in the result). */
export function medians<T extends object>(items: readonly T[]): T {
  const first = items[0] as Record<string, number | undefined>;
  const result: Record<string, number | undefined> = {};
  for (const key of Object.keys(first)) {
    const values = items.map((item) => (item as Record<string, number | undefined>)[key]);
    result[key] = values.every((value) => value !== undefined) ? median(values) : undefined;
  }
  return result as T;
}

/** The spread of some figures: "lowest-highest". */
export const spreadOf = (values: readonly number[], digits = 2): string => `${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)}`;
