// One streamed request against an OpenAI-compatible /v1/completions endpoint, timed the
// way AIPerf times it: first non-empty chunk, every chunk, the last byte.
import type { RequestRecord } from '../results/types.js';

export interface SendOptions {
  baseUrl: string;
  model: string;
  /** Send the prompt as token ids instead of text (skips the server's tokenizer). */
  sendTokenIds: boolean;
  timeoutMs: number;
  /** Milliseconds since the benchmark's start. */
  clock: () => number;
  signal?: AbortSignal;
}

export interface SendableRequest {
  id: string;
  prompt: string;
  promptTokenIds: number[];
  outputTokens: number;
}

interface StreamChunk {
  choices?: Array<{ text?: string; delta?: { content?: string } }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } };
  error?: { message?: string; code?: string };
}

/** Sends one request and fills a record; never throws (failures land in record.error). */
export async function sendRequest(req: SendableRequest, scheduledMs: number, o: SendOptions): Promise<RequestRecord> {
  const record: RequestRecord = {
    id: req.id,
    scheduledMs,
    startMs: o.clock(),
    chunkMs: [],
    inputTokens: req.promptTokenIds.length,
    outputTokens: 0,
  };
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  let chunks = 0;
  try {
    const res = await fetch(`${o.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: o.model,
        prompt: o.sendTokenIds ? req.promptTokenIds : req.prompt,
        max_tokens: Math.max(1, req.outputTokens),
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      }),
      signal,
    });
    record.worker = res.headers.get('x-armature-decode-worker') ?? undefined;
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      record.error = { type: `http_${res.status}`, message: text.slice(0, 300) };
      record.endMs = o.clock();
      return record;
    }
    const decoder = new TextDecoder();
    let buffer = '';
    let usageTokens: number | undefined;
    for await (const bytes of res.body) {
      buffer += decoder.decode(bytes, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data:')) continue;
          const data = line.slice(5).trim();
          if (data === '[DONE]') continue;
          const chunk = JSON.parse(data) as StreamChunk;
          if (chunk.error)
            throw Object.assign(new Error(chunk.error.message ?? 'stream error'), { type: 'stream_error' });
          const text = chunk.choices?.[0]?.text ?? chunk.choices?.[0]?.delta?.content;
          if (text) {
            const now = o.clock();
            if (record.firstTokenMs === undefined) record.firstTokenMs = now;
            record.chunkMs.push(now);
            chunks++;
          }
          if (chunk.usage) {
            usageTokens = chunk.usage.completion_tokens;
            if (chunk.usage.prompt_tokens !== undefined) record.inputTokens = chunk.usage.prompt_tokens;
            const cached = chunk.usage.prompt_tokens_details?.cached_tokens;
            if (cached !== undefined) record.cachedTokens = cached;
          }
        }
      }
    }
    record.endMs = o.clock();
    record.outputTokens = usageTokens ?? chunks;
  } catch (err) {
    record.endMs = o.clock();
    const e = err as Error & { type?: string };
    const type = e.type ?? (timeout.aborted ? 'timeout' : o.signal?.aborted ? 'cancelled' : 'connection');
    record.error = { type, message: e.message.slice(0, 300) };
  }
  return record;
}
