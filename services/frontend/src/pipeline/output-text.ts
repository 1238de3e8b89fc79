// Stage 5, output text: turns token ids into text across workers (incremental
// detokenizing, so a character split over tokens comes out whole) and applies the stop
// strings. One OutputText lives for the whole request, so a re-routed or migrated request
// continues the same text, and it keeps the generated ids a migration resends. It does not talk to workers or decide when to stop them: the decode
// stage does, when `stopped` turns true.
import { IncrementalDetokenizer, StopStringMatcher } from '@armature/tokenizer';
import type { FinishKind, PipelineEvent, PreparedRequest } from './types.js';

export class OutputText {
  private readonly detok: IncrementalDetokenizer;
  private readonly stops: StopStringMatcher;
  /** Every token generated so far, in order: what a migrated request resends after its prompt. */
  readonly generated: number[] = [];
  /** A stop string matched: nothing more is emitted. */
  stopped = false;

  constructor(p: PreparedRequest) {
    this.detok = new IncrementalDetokenizer(p.tokenizer);
    this.stops = new StopStringMatcher(p.request.stop);
  }

  get completionTokens(): number {
    return this.generated.length;
  }

  /** Adds generated tokens; the text event says what may be shown now. */
  push(tokenIds: number[]): PipelineEvent {
    for (const id of tokenIds) this.generated.push(id);
    const { emit, stopped } = this.stops.push(this.detok.push(tokenIds));
    if (stopped) this.stopped = true;
    return { type: 'text', text: emit, tokens: tokenIds.length }; // empty text still counts tokens for ITL
  }

  /** The held-back tail at the end of generation; sets `stopped` if a stop string ends in it. */
  flush(): string {
    if (this.stopped) return '';
    const tail = this.stops.push(this.detok.flush());
    if (tail.stopped) {
      this.stopped = true;
      return tail.emit;
    }
    return tail.emit + this.stops.flush();
  }

  /** The request's last events: the held-back tail, then the end (`stop` when a stop string matched). */
  *finish(finish: FinishKind): Generator<PipelineEvent> {
    const rest = this.flush();
    if (rest) yield { type: 'text', text: rest, tokens: 0 };
    yield { type: 'end', finishReason: this.stopped ? 'stop' : finish, completionTokens: this.completionTokens };
  }
}
