// Incremental detokenization. A token can end in the middle of a UTF-8 character (byte
// tokens); decoding each token alone would emit U+FFFD. We decode a sliding window and
// emit text only once it no longer ends in an incomplete character (vLLM's method).
import type { Tokenizer } from './types.js';

const REPLACEMENT = '\uFFFD';

export class IncrementalDetokenizer {
  private readonly ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;

  constructor(private readonly tokenizer: Tokenizer) {}

  /** Adds tokens; returns the text that is now complete (possibly empty). */
  push(tokenIds: readonly number[]): string {
    for (const id of tokenIds) this.ids.push(id);
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const fullText = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (fullText.length > prefixText.length && !fullText.endsWith(REPLACEMENT)) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return fullText.slice(prefixText.length);
    }
    return '';
  }

  /** Text still held back at the end of the stream (an incomplete character stays U+FFFD). */
  flush(): string {
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const fullText = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return fullText.slice(prefixText.length);
  }
}

/**
 * Applies stop strings to streamed text: holds back a tail that could still begin a stop
 * string, and reports where output must end when one appears.
 */
export class StopStringMatcher {
  private pending = '';
  private readonly holdBack: number;

  constructor(private readonly stops: readonly string[]) {
    this.holdBack = stops.reduce((m, s) => Math.max(m, s.length - 1), 0);
  }

  /** Feeds new text; returns what may be emitted and whether a stop string was hit. */
  push(text: string): { emit: string; stopped: boolean } {
    if (this.stops.length === 0) return { emit: text, stopped: false };
    this.pending += text;
    let cut = -1;
    for (const s of this.stops) {
      const at = this.pending.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      const emit = this.pending.slice(0, cut);
      this.pending = '';
      return { emit, stopped: true };
    }
    const safe = Math.max(0, this.pending.length - this.holdBack);
    const emit = this.pending.slice(0, safe);
    this.pending = this.pending.slice(safe);
    return { emit, stopped: false };
  }

  /** The held-back tail at the end of the stream. */
  flush(): string {
    const rest = this.pending;
    this.pending = '';
    return rest;
  }
}
