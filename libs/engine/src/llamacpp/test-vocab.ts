// The test model's SentencePiece ("llama") vocabulary: real English words, so a random
// model's output reads as (meaningless) words and English prompts tokenize into words.
//
// llama.cpp's SPM tokenizer starts from single characters (a space is "▁", and one is
// prepended to the text) and repeatedly merges the adjacent pair whose concatenation is a
// piece of the vocabulary, best score first; characters no piece covers fall back to byte
// tokens <0xNN>. A word is therefore reachable only if every piece on its way is in the
// vocabulary: besides each word "▁word" we add every prefix "▁w", "▁wo", "▁wor", and every
// printable ASCII character, bare and after "▁". Merges then grow each word from its "▁"
// left to right, stopping at the longest prefix that is a piece; the rest of a word that is
// not in the vocabulary continues as single characters (never bytes, for ASCII).
//
// Words come from the o200k_base BPE ranks of gpt-tokenizer: the first `wordCount` ranks
// that are a space followed by two or more lowercase ASCII letters, in rank order (common
// first). gpt-tokenizer is a dependency of @armature/tokenizer, resolved from the root
// node_modules, and loaded only when a vocabulary is built.

/** Token types as llama.cpp numbers them (`llama_token_type`). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export const UNK_ID = 0;
export const BOS_ID = 1;
export const EOS_ID = 2;
export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';

/** SentencePiece's visible space. */
export const SPACE = '\u2581';

export interface TestVocab {
  tokens: string[];
  scores: number[];
  types: number[];
  /** Ids of whole-word pieces "▁word" (the o200k words, "▁a" and "▁I"): what the model may generate. */
  wordIds: number[];
}

/** Builds the vocabulary: specials, 256 bytes, chat controls, then words, characters and word prefixes. */
export async function buildTestVocab(wordCount: number): Promise<TestVocab> {
  const words = await englishWords(wordCount);
  const vocab: TestVocab = { tokens: [], scores: [], types: [], wordIds: [] };
  const seen = new Set<string>();
  const add = (token: string, score: number, type: number): number => {
    if (seen.has(token)) return -1;
    seen.add(token);
    vocab.tokens.push(token);
    vocab.scores.push(score);
    vocab.types.push(type);
    return vocab.tokens.length - 1;
  };

  add('<unk>', 0, TOKEN_TYPE.unknown);
  add('<s>', 0, TOKEN_TYPE.control);
  add('</s>', 0, TOKEN_TYPE.control);
  for (let byte = 0; byte < 256; byte++) {
    add(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`, 0, TOKEN_TYPE.byte);
  }
  add(IM_START, 0, TOKEN_TYPE.control);
  add(IM_END, 0, TOKEN_TYPE.control);

  // Scores only order competing merges; rank order keeps common words first.
  let score = 0;
  for (const word of words) vocab.wordIds.push(add(SPACE + word, score--, TOKEN_TYPE.normal));
  add(SPACE, score--, TOKEN_TYPE.normal);
  for (let code = 0x21; code <= 0x7e; code++) {
    const char = String.fromCharCode(code);
    const spaced = add(SPACE + char, score--, TOKEN_TYPE.normal);
    if ((char === 'a' || char === 'I') && spaced >= 0) vocab.wordIds.push(spaced);
    add(char, score--, TOKEN_TYPE.normal);
  }
  for (const word of words) {
    for (let length = 1; length < word.length; length++) add(SPACE + word.slice(0, length), score--, TOKEN_TYPE.normal);
  }
  vocab.wordIds.sort((a, b) => a - b);
  return vocab;
}

async function englishWords(count: number): Promise<string[]> {
  const { default: ranks } = await import('gpt-tokenizer/bpeRanks/o200k_base');
  const words: string[] = [];
  for (const piece of ranks) {
    if (typeof piece === 'string' && /^ [a-z]{2,}$/.test(piece)) {
      words.push(piece.slice(1));
      if (words.length === count) return words;
    }
  }
  throw new RangeError(`test vocabulary: o200k has only ${words.length} lowercase words, ${count} asked`);
}
