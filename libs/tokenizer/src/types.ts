// The tokenizer's two shared shapes: what a tokenizer can do and what a chat message is.
// Their own file because the loaders (tokenizer.ts, gguf-tokenizer.ts) and the chat
// templates (chat-template.ts) all need both, and none of them should import another for
// a type (they did, in a circle).

/** One message of a chat, as the OpenAI API sends it. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** A loaded tokenizer (see loadTokenizer). */
export interface Tokenizer {
  readonly id: string;
  readonly vocabSize: number;
  /**
   * No token covers more UTF-8 bytes of the text than this, so a text of `b` bytes has at
   * least `ceil(b / maxTokenBytes)` tokens: a prompt can be refused before it is tokenized.
   * `Infinity` where the tokenizer normalizes text first and no such bound holds.
   */
  readonly maxTokenBytes: number;
  /** Tokens every text or chat prompt starts with: `[bos]` when the model wants BOS prepended, else `[]`. */
  readonly bosTokenIds: readonly number[];
  /** Encodes text; special-token strings in it are treated as plain text. */
  encode(text: string): number[];
  /** Encodes a template marker, resolving special tokens such as `<|im_start|>`. */
  encodeSpecial(text: string): number[];
  decode(ids: readonly number[]): string;
  /**
   * Renders messages with the model's own chat template (generation prompt added) and
   * tokenizes the result, BOS included; present on tokenizers that carry a template (gguf).
   */
  applyChat?(messages: readonly ChatMessage[]): number[];
}
