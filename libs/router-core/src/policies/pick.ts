// Choosing among scored candidates: the extremes within a small tolerance (float noise must
// not decide a tie) and a uniformly random pick among what is left, so bursts of identical
// requests spread out instead of piling onto the first worker in the list.

/** Scores closer than this are a tie. */
export const TIE_EPSILON = 1e-9;

/** A uniformly random element of a non-empty list. */
export function pickAtRandom<T>(items: readonly T[], random: () => number): T {
  const index = Math.min(items.length - 1, Math.floor(random() * items.length));
  return items[Math.max(0, index)]!;
}

/** Every item scoring within TIE_EPSILON of the lowest score, in input order. */
export function lowest<T>(items: readonly T[], score: (item: T) => number): T[] {
  const scores = items.map(score);
  const min = Math.min(...scores);
  return items.filter((_, i) => scores[i]! - min <= TIE_EPSILON);
}

/** Every item scoring within TIE_EPSILON of the highest score, in input order. */
export function highest<T>(items: readonly T[], score: (item: T) => number): T[] {
  return lowest(items, (item) => -score(item));
}
