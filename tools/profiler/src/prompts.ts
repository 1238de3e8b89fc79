// Prompts of fresh random token ids, so no measured request finds its prefix in the cache:
// a profile times compute, not reuse. Ids stay in [FIRST_ID, END_ID), inside any real
// vocabulary (llama.cpp rejects ids past its own) and clear of the low special ids.
import { mulberry32 } from '@armature/runtime';

export const FIRST_ID = 300;
export const END_ID = 1000;

/** A seeded uniform [0, 1) generator. */
export const seededRandom = mulberry32;

/** `length` random token ids. */
export function randomPrompt(length: number, random: () => number = Math.random): number[] {
  const ids = new Array<number>(length);
  for (let i = 0; i < length; i++) ids[i] = FIRST_ID + Math.floor(random() * (END_ID - FIRST_ID));
  return ids;
}
