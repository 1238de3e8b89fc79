// The body of one TokenizePool thread (tokenize-pool.ts): it loads tokenizers by id itself
// (gguf ones from their file, with a CPU-only Llama of its own) and runs the same encode and
// applyChatTemplate as the main thread would, so a prompt gets the same tokens on either.
// One job at a time; the pool terminates a thread whose job runs past its deadline.
import { parentPort } from 'node:worker_threads';
import { asArmatureError, type ErrorClass } from '@armature/runtime';
import { applyChatTemplate } from './chat-template.js';
import { loadTokenizer } from './tokenizer.js';
import type { ChatMessage } from './types.js';

/** What a thread is asked to tokenize, with which tokenizer. */
export type TokenizeJob = { tokenizerId: string } & (
  { kind: 'encode'; text: string } | { kind: 'chat'; templateId: string; messages: readonly ChatMessage[] }
);

/** A job as posted to a thread, numbered so that its answer can be matched to it. */
export type TokenizeJobRequest = TokenizeJob & { job: number };

/** A thread's answer: the token ids, or the ArmatureError the job threw, as plain fields. */
export type TokenizeJobResult =
  | { job: number; ids: Uint32Array<ArrayBuffer> }
  | {
      job: number;
      error: { cls: ErrorClass; reason: string; message: string; param?: string; detail?: string };
    };

const port = parentPort;
if (port) {
  port.on('message', (request: TokenizeJobRequest) => {
    void run(request).then((result) =>
      'ids' in result ? port.postMessage(result, [result.ids.buffer]) : port.postMessage(result),
    );
  });
}

async function run(request: TokenizeJobRequest): Promise<TokenizeJobResult> {
  try {
    const tokenizer = await loadTokenizer(request.tokenizerId);
    const ids =
      request.kind === 'encode'
        ? tokenizer.encode(request.text)
        : applyChatTemplate(request.templateId, request.messages, tokenizer);
    return { job: request.job, ids: Uint32Array.from(ids) };
  } catch (thrown) {
    const error = asArmatureError(thrown);
    const { cls, reason, message, param, detail } = error;
    return { job: request.job, error: { cls, reason, message, param, detail } };
  }
}
