// Tokenizers read from a GGUF file's own vocabulary through node-llama-cpp, so the frontend
// tokenizes, templates and detokenizes exactly as a llama.cpp worker serving that file does
// (block hashes at the router then match the worker's). Only the vocabulary is loaded, never
// the weights; one CPU-only Llama instance serves every file in the process. This is the one
// file that talks to node-llama-cpp; its errors become ArmatureErrors here.
//
// llama.cpp's SPM byte fallback reallocates its output for every character it has no token
// for, so a long run of such characters (emoji, newlines, rare CJK) costs time quadratic in
// the whole output. Text (plain, and the text of rendered chats) is therefore tokenized in
// parts cut inside its long runs (long-runs.ts), each later part as the continuation of the
// text before it; a cut where that is not possible (the space SPM prefixes to a text merges
// into the part's first token) is not made. Text without a long run is one part, as before.
import { isAbsolute } from 'node:path';
import type {
  ChatHistoryItem,
  ChatWrapper,
  Llama,
  LlamaModel,
  Token,
  Tokenizer as LlamaTokenizer,
} from 'node-llama-cpp';
import { ArmatureError, createLogger } from '@armature/runtime';
import { longRunCuts } from './long-runs.js';
import type { ChatMessage, Tokenizer } from './types.js';

const log = createLogger('tokenizer/gguf');

type NodeLlamaCpp = typeof import('node-llama-cpp');

interface LlamaRuntime {
  readonly lib: NodeLlamaCpp;
  readonly llama: Llama;
}

let runtime: Promise<LlamaRuntime> | undefined;

/** The process's one Llama instance (CPU, prebuilt binaries only), created on first use. */
function llamaRuntime(): Promise<LlamaRuntime> {
  if (!runtime) {
    const pending = (async () => {
      // Imported lazily: processes serving only gpt-tokenizer models never load the addon.
      const lib = await import('node-llama-cpp');
      const llama = await lib.getLlama({
        gpu: false,
        build: 'never',
        logLevel: lib.LlamaLogLevel.error,
        logger: (_level, message) => log.error(message.trim()),
      });
      return { lib, llama };
    })();
    runtime = pending;
    pending.catch(() => {
      if (runtime === pending) runtime = undefined;
    });
  }
  return runtime;
}

/** Loads `gguf:<absolute path>`; a file that cannot be read as GGUF is `tokenizer_load_failed`. */
export async function loadGgufTokenizer(id: string, path: string): Promise<Tokenizer> {
  if (!isAbsolute(path)) throw loadFailed(id, 'the path of a gguf tokenizer must be absolute');
  let lib: NodeLlamaCpp;
  let model: LlamaModel;
  try {
    const rt = await llamaRuntime();
    lib = rt.lib;
    model = await rt.llama.loadModel({ modelPath: path, vocabOnly: true });
  } catch (error) {
    throw loadFailed(id, error instanceof Error ? error.message : String(error), error);
  }
  if (!model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length) {
    await model.dispose();
    throw loadFailed(id, 'the file has no tokenizer vocabulary (tokenizer.ggml.tokens)');
  }
  return ggufTokenizer(id, lib, model);
}

function loadFailed(id: string, detail: string, cause?: unknown): ArmatureError {
  const message = `failed to load tokenizer ${JSON.stringify(id)}`;
  return new ArmatureError('failed_precondition', 'tokenizer_load_failed', message, { detail, cause });
}

function ggufTokenizer(id: string, lib: NodeLlamaCpp, model: LlamaModel): Tokenizer {
  const vocabSize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
  const bos = model.tokens.bos;
  const bosTokenIds: readonly number[] = model.tokens.shouldPrependBosToken && bos !== null ? [bos] : [];
  const isVocabId = (t: number): boolean => Number.isInteger(t) && t >= 0 && t < vocabSize;
  const tokenizeText = runBoundedTokenize(model);
  let wrapper: ChatWrapper | undefined;

  return {
    id,
    vocabSize,
    maxTokenBytes: longestTokenBytes(model),
    bosTokenIds,
    encode: (text) => tokenizeText(text),
    encodeSpecial: (text) => model.tokenize(text, true),
    decode: (ids) => {
      // llama.cpp aborts the process on an id outside the vocabulary: those become U+FFFD.
      if (ids.every(isVocabId)) return model.detokenize(ids as readonly Token[], false);
      return decodeAroundInvalid(model, ids, isVocabId);
    },
    applyChat: (messages) => {
      // Resolved as node-llama-cpp's own chat does: a specialized wrapper when it renders the
      // GGUF's Jinja template identically, the Jinja template otherwise.
      wrapper ??= lib.resolveChatWrapper(model);
      let ids: number[];
      try {
        const { contextText } = wrapper.generateContextState({ chatHistory: toChatHistory(messages) });
        ids = contextText.tokenize(runBoundedTokenizer(model, tokenizeText));
      } catch (error) {
        throw new ArmatureError(
          'invalid_argument',
          'chat_template_failed',
          "the model's chat template cannot render these messages",
          { param: 'messages', detail: error instanceof Error ? error.message : String(error), cause: error },
        );
      }
      // llama.cpp adds BOS to a rendered prompt that lacks it (a template without bos_token).
      const hasBos = bosTokenIds.every((t, i) => ids[i] === t);
      return hasBos ? ids : [...bosTokenIds, ...ids];
    },
  };
}

type TokenizeOptions = 'trimLeadingSpace' | undefined;
type TextTokenize = (text: string, options?: TokenizeOptions) => Token[];

/**
 * Tokenizes text as `model.tokenize(text, false, options)` does, in parts cut inside its long
 * runs; a part that cannot continue the text before it joins that text's part instead.
 */
function runBoundedTokenize(model: LlamaModel): TextTokenize {
  let anchor: { ids: Token[]; text: string } | undefined;
  /** The part's tokens as a continuation: its own, less a first token that is only the prefixed space. */
  const continuation = (part: string): Token[] | undefined => {
    if (!anchor) {
      const ids = model.tokenize('\n', false);
      anchor = { ids, text: model.detokenize(ids, false) };
    }
    const ids = model.tokenize(part, false);
    for (const candidate of [ids, ids.slice(1)]) {
      // After the anchor, detokenize keeps a leading space it would strip from a text's start.
      if (model.detokenize([...anchor.ids, ...candidate], false) === anchor.text + part) return candidate;
    }
    return undefined;
  };

  return (text, options) => {
    const cuts = longRunCuts(text);
    if (cuts.length === 0) return model.tokenize(text, false, options);
    const bounds = [0, ...cuts, text.length];
    const out: Token[] = [];
    let start = 0;
    let end = bounds[1]!;
    let ids: Token[] | undefined = model.tokenize(text.slice(start, end), false, options);
    const flush = (): boolean => {
      // A joined span starts where a part could start: at 0, or where a continuation worked.
      ids ??= start === 0 ? model.tokenize(text.slice(0, end), false, options) : continuation(text.slice(start, end));
      if (ids === undefined) return false;
      for (const t of ids) out.push(t);
      return true;
    };
    for (let i = 1; i < bounds.length - 1; i++) {
      const next = continuation(text.slice(bounds[i], bounds[i + 1]));
      if (next === undefined) {
        ids = undefined;
        end = bounds[i + 1]!;
        continue;
      }
      if (!flush()) return model.tokenize(text, false, options);
      [start, end, ids] = [bounds[i]!, bounds[i + 1]!, next];
    }
    return flush() ? out : model.tokenize(text, false, options);
  };
}

/** node-llama-cpp's tokenizer with its text tokenized by `tokenizeText`, for LlamaText.tokenize. */
function runBoundedTokenizer(model: LlamaModel, tokenizeText: TextTokenize): LlamaTokenizer {
  const tokenize = (text: string, specialTokens?: boolean | 'builtin', options?: TokenizeOptions): Token[] =>
    specialTokens === undefined || specialTokens === false
      ? tokenizeText(text, options)
      : model.tokenizer(text as never, specialTokens as never, options as never);
  return Object.assign(tokenize, {
    detokenize: model.detokenize,
    isSpecialToken: model.isSpecialToken,
    isEogToken: model.isEogToken,
  }) as LlamaTokenizer;
}

/**
 * The UTF-8 length of the longest token's text as the vocabulary stores it: at least the
 * bytes it covers for SPM (`▁` for a space, `<0x0A>` for a byte) and byte-level BPE (one
 * character per byte). Vocabularies that normalize text first (WordPiece, Unigram) have no
 * such bound: `Infinity`.
 */
function longestTokenBytes(model: LlamaModel): number {
  const ggml = model.fileInfo.metadata.tokenizer?.ggml;
  if (ggml?.model !== 'llama' && ggml?.model !== 'gpt2') return Infinity;
  let longest = 1;
  for (const token of ggml.tokens ?? []) longest = Math.max(longest, Buffer.byteLength(token));
  return longest;
}

/** Messages as node-llama-cpp's chat history, with an empty model turn: the generation prompt. */
function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history = messages.map((m): ChatHistoryItem => {
    switch (m.role) {
      case 'system':
      case 'developer':
        return { type: 'system', text: m.content };
      case 'user':
        return { type: 'user', text: m.content };
      case 'assistant':
        return { type: 'model', response: [m.content] };
      default:
        throw new ArmatureError(
          'invalid_argument',
          'unsupported_role',
          `the model's chat template does not support the role ${JSON.stringify(m.role)}`,
          { param: 'messages' },
        );
    }
  });
  history.push({ type: 'model', response: [] });
  return history;
}

function decodeAroundInvalid(model: LlamaModel, ids: readonly number[], isVocabId: (t: number) => boolean): string {
  let text = '';
  let start = 0;
  for (let i = 0; i <= ids.length; i++) {
    if (i < ids.length && isVocabId(ids[i]!)) continue;
    if (i > start) {
      const before = ids.slice(0, start).filter(isVocabId) as Token[];
      text += model.detokenize(ids.slice(start, i) as Token[], false, before);
    }
    if (i < ids.length) text += '\uFFFD';
    start = i + 1;
  }
  return text;
}
