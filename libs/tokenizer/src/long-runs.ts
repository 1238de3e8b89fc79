// Where long runs of text are cut before they reach BPE. A run without a break (64K of "a",
// of spaces, of one emoji) costs time quadratic in its length: gpt-tokenizer's merge loop
// rescans a whole piece for every merge, and llama.cpp's SPM byte fallback reallocates its
// output for every character it has no token for. Cutting each run into parts of at most
// MAX_RUN_LENGTH UTF-16 code units, at code-point boundaries, bounds that cost per part, so
// a prompt tokenizes in time linear in its length, as tokenizer libraries bound their pieces.
// Text without such a run is never cut and tokenizes exactly as before; in a text with one,
// tokens differ from the unbounded tokenizer's only where a part begins (a merge across a
// cut is not made), and every part still decodes to its own text.

/** The longest run, in UTF-16 code units, tokenized whole. */
export const MAX_RUN_LENGTH = 256;

/** Cuts a piece into parts of at most `max` code units (default MAX_RUN_LENGTH), never inside a surrogate pair. */
export function splitLongPiece(piece: string, max = MAX_RUN_LENGTH): string[] {
  if (piece.length <= max) return [piece];
  const parts: string[] = [];
  let start = 0;
  for (const cut of cutsWithin(piece, 0, piece.length, max)) {
    parts.push(piece.slice(start, cut));
    start = cut;
  }
  parts.push(piece.slice(start));
  return parts;
}

/**
 * Where to cut a text that has no pre-tokenizer of ours (a GGUF vocabulary): `max` code
 * units (default MAX_RUN_LENGTH) into every run of whitespace or of non-whitespace longer
 * than `max`, in order; none for a text without such a run.
 */
export function longRunCuts(text: string, max = MAX_RUN_LENGTH): number[] {
  const cuts: number[] = [];
  if (text.length <= max) return cuts;
  for (const run of text.matchAll(/\s+|\S+/g)) {
    if (run[0].length > max) cuts.push(...cutsWithin(text, run.index, run.index + run[0].length, max));
  }
  return cuts;
}

function cutsWithin(text: string, start: number, end: number, max: number): number[] {
  if (!Number.isInteger(max) || max < 2) throw new RangeError(`max must be an integer of at least 2, not ${max}`);
  const cuts: number[] = [];
  let at = start;
  while (end - at > max) {
    let cut = at + max;
    if (isHighSurrogate(text.charCodeAt(cut - 1))) cut--;
    cuts.push(cut);
    at = cut;
  }
  return cuts;
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;
