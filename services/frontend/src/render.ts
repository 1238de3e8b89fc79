// Stage 6, render: turns the pipeline's events into OpenAI's answer, one JSON body or an
// SSE stream, with the headers that name the workers. It writes to the response and
// nothing else: errors are rendered by http-server.ts, which owns the status line's fate.
import type { ServerResponse } from 'node:http';
import {
  chatChunk,
  chatCompletion,
  textCompletion,
  usage,
  usageChunk,
  type OpenAiFinishReason,
  type ResponseIdentity,
} from '@armature/openai';
import { ArmatureError } from '@armature/runtime';
import type { PipelineEvent, PreparedRequest } from './pipeline/index.js';

export const DECODE_WORKER_HEADER = 'x-armature-decode-worker';
/** Set when a separate prefill worker ran the prompt (disaggregated serving). */
export const PREFILL_WORKER_HEADER = 'x-armature-prefill-worker';

/** Collects the events into one chat.completion / text_completion body. */
export async function renderUnary(
  p: PreparedRequest,
  events: AsyncIterable<PipelineEvent>,
  res: ServerResponse,
  onStatusLine?: () => void,
): Promise<void> {
  const who = identity(p);
  let text = p.request.echo && typeof p.request.prompt === 'string' ? p.request.prompt : '';
  let worker = '';
  let prefillWorker: string | undefined;
  let cached = 0;
  let finish: OpenAiFinishReason = null;
  let completionTokens = 0;
  for await (const ev of events) {
    if (ev.type === 'start') {
      worker = ev.worker;
      prefillWorker = ev.prefillWorker;
      cached = ev.cachedTokens;
    } else if (ev.type === 'text') text += ev.text;
    else {
      finish = ev.finishReason;
      completionTokens = ev.completionTokens;
    }
  }
  onStatusLine?.();
  const u = usage(p.promptIds.length, completionTokens, cached);
  const body = p.request.kind === 'chat' ? chatCompletion(who, text, finish, u) : textCompletion(who, text, finish, u);
  sendJson(res, 200, body, {
    [DECODE_WORKER_HEADER]: worker,
    ...(prefillWorker ? { [PREFILL_WORKER_HEADER]: prefillWorker } : {}),
  });
}

/** Streams the events as SSE chunks; the status line waits for the worker's first answer. */
export async function renderStream(
  p: PreparedRequest,
  events: AsyncIterable<PipelineEvent>,
  res: ServerResponse,
  slowClientTimeoutMs = 30_000,
): Promise<void> {
  const who = identity(p);
  const chat = p.request.kind === 'chat';
  // Back-pressure: while the client's socket buffer is full, the next event is not pulled
  // (so neither is the worker's stream); a client that reads nothing for
  // slowClientTimeoutMs is dropped, which cancels its request.
  const send = async (obj: unknown): Promise<void> => {
    if (res.write(`data: ${JSON.stringify(obj)}\n\n`)) return;
    await drained(res, slowClientTimeoutMs);
  };
  let cached = 0;
  for await (const ev of events) {
    if (ev.type === 'start') {
      cached = ev.cachedTokens;
      // Headers wait for the worker's first answer, so a request re-routed before it
      // still gets a clean status line.
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        [DECODE_WORKER_HEADER]: ev.worker,
        ...(ev.prefillWorker ? { [PREFILL_WORKER_HEADER]: ev.prefillWorker } : {}),
      });
      if (chat) await send(chatChunk(who, { role: 'assistant', content: '' }, null));
      else if (p.request.echo && typeof p.request.prompt === 'string')
        await send(textCompletion(who, p.request.prompt, null));
    } else if (ev.type === 'text') {
      if (ev.text) await send(chat ? chatChunk(who, { content: ev.text }, null) : textCompletion(who, ev.text, null));
    } else {
      await send(chat ? chatChunk(who, {}, ev.finishReason) : textCompletion(who, '', ev.finishReason));
      if (p.request.includeUsage) {
        await send(
          usageChunk(
            who,
            chat ? 'chat.completion.chunk' : 'text_completion',
            usage(p.promptIds.length, ev.completionTokens, cached),
          ),
        );
      }
    }
  }
  res.write('data: [DONE]\n\n');
  res.end();
}

/** Resolves once the response's buffer drains; past `ms`, destroys the connection and rejects. */
function drained(res: ServerResponse, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      res.off('drain', onDrain);
      res.off('close', onClose);
    };
    const onDrain = (): void => {
      done();
      resolve();
    };
    const onClose = (): void => {
      done();
      reject(new ArmatureError('cancelled', 'client_disconnected', 'client disconnected'));
    };
    const timer = setTimeout(() => {
      done();
      res.destroy(); // the request's context is cancelled by the close
      reject(new ArmatureError('cancelled', 'slow_client', `the client read nothing for ${ms} ms`));
    }, ms);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

function identity(p: PreparedRequest): ResponseIdentity {
  return {
    id: `${p.request.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${p.requestId}`,
    created: Math.floor(Date.now() / 1000),
    model: p.request.model,
  };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
