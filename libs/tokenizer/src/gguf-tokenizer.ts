// Tokenizers read from a GGUF file's own vocabulary through node-llama-cpp, so the frontend
// tokenizes, templates and detokenizes exactly as a llama.cpp worker serving that file does
// (block hashes at the router then match the worker's). Only the vocabulary is loaded, never
// the weights; one CPU-only Llama instance serves every file in the process. This is the one
// file that talks to node-llama-cpp; its errors become ArmatureErrors here.
import { isAbsolute } from 'node:path';
import type { ChatHistoryItem, ChatWrapper, Llama, LlamaModel, Token } from 'node-llama-cpp';
import { ArmatureError, createLogger } from '@armature/runtime';
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
  let wrapper: ChatWrapper | undefined;

  return {
    id,
    vocabSize,
    bosTokenIds,
    encode: (text) => model.tokenize(text, false),
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
        ids = contextText.tokenize(model.tokenizer);
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
