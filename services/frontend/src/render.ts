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
import type { PipelineEvent, PreparedRequest } from './pipeline/index.js';

export const DECODE_WORKER_HEADER = 'x-armature-decode-worker';
/** Set when a separate prefill worker ran the prompt (disaggregated serving). */
export const PREFILL_WORKER_HEADER = 'x-armature-prefill-worker';

/** Collects the events into one chat.completion / text_completion body. */
export async function renderUnary(
  p: PreparedRequest,
  events: AsyncIterable<PipelineEvent>,
  res: ServerResponse,
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
): Promise<void> {
  const who = identity(p);
  const chat = p.request.kind === 'chat';
  const send = (obj: unknown): void => {
    res.write(`data: ${JSON.stringify(obj)}\n\n`);
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
      if (chat) send(chatChunk(who, { role: 'assistant', content: '' }, null));
      else if (p.request.echo && typeof p.request.prompt === 'string')
        send(textCompletion(who, p.request.prompt, null));
    } else if (ev.type === 'text') {
      if (ev.text) send(chat ? chatChunk(who, { content: ev.text }, null) : textCompletion(who, ev.text, null));
    } else {
      send(chat ? chatChunk(who, {}, ev.finishReason) : textCompletion(who, '', ev.finishReason));
      if (p.request.includeUsage) {
        send(
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
