// Prompts of fresh random token ids, so no measured request finds its prefix in the cache:
// a profile times compute, not reuse. Ids stay in [FIRST_ID, END_ID), inside any real
// vocabulary (llama.cpp rejects ids past its own) and clear of the low special ids.

export const FIRST_ID = 300;
export const END_ID = 1000;

/** A seeded uniform [0, 1) generator (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` random token ids. */
export function randomPrompt(length: number, random: () => number = Math.random): number[] {
  const ids = new Array<number>(length);
  for (let i = 0; i < length; i++) ids[i] = FIRST_ID + Math.floor(random() * (END_ID - FIRST_ID));
  return ids;
}
