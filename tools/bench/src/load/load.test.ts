// The load generator against a real local HTTP server that streams SSE like an OpenAI
// endpoint: schedules, bounds, timing capture and error classification.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLoad, type WorkloadItem } from './generator.js';
import { mulberry32, sendOffsets } from './schedule.js';

let server: Server;
let baseUrl: string;
let inflight = 0;
let maxInflight = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const parsed = JSON.parse(body) as { prompt: string | number[]; max_tokens: number };
      if (parsed.prompt === 'fail') {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"message":"no"}}');
        return;
      }
      inflight++;
      maxInflight = Math.max(maxInflight, inflight);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-armature-decode-worker': 'w0' });
      let sent = 0;
      const tick = setInterval(() => {
        if (sent < parsed.max_tokens) {
          res.write(`data: ${JSON.stringify({ choices: [{ text: 'x' }] })}\n\n`);
          sent++;
          return;
        }
        clearInterval(tick);
        res.write(
          `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: sent, prompt_tokens_details: { cached_tokens: 1 } } })}\n\n`,
        );
        res.end('data: [DONE]\n\n');
        inflight--;
      }, 5);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

const items = (n: number, prompt = 'hello', out = 4): WorkloadItem[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `q${i}`,
    prompt,
    promptTokenIds: [1, 2, 3],
    outputTokens: out,
    arrivalMs: i * 50,
  }));

const base = { model: 'm', maxDurationMs: 20_000, requestTimeoutMs: 10_000, sendTokenIds: false };

describe('schedules', () => {
  it('trace mode scales timestamps; rate mode gives the asked mean rate', () => {
    expect(sendOffsets({ mode: 'trace', timeScale: 0.5 }, [0, 100, 300])).toEqual([0, 50, 150]);
    expect(
      sendOffsets({ mode: 'rate', rate: 10, arrival: 'constant', seed: 1 }, [undefined, undefined, undefined]),
    ).toEqual([0, 100, 200]);
    const poisson = sendOffsets(
      { mode: 'rate', rate: 20, arrival: 'poisson', seed: 7 },
      new Array(5000).fill(undefined),
    )!;
    const rate = (poisson.length - 1) / (poisson[poisson.length - 1]! / 1000);
    expect(rate).toBeGreaterThan(19);
    expect(rate).toBeLessThan(21);
    expect(() => sendOffsets({ mode: 'trace', timeScale: 1 }, [undefined])).toThrow(/timestamp/);
  });
  it('the PRNG is reproducible', () => {
    const a = mulberry32(3);
    const b = mulberry32(3);
    expect([a(), a(), a()]).toEqual([b(), b(), b()]);
  });
});

describe('runLoad', () => {
  it('records first-chunk, per-chunk and end times, usage and the worker', async () => {
    const records = await runLoad(items(3), { ...base, baseUrl, schedule: { mode: 'trace', timeScale: 1 } });
    expect(records).toHaveLength(3);
    for (const r of records.sort((x, y) => x.scheduledMs - y.scheduledMs)) {
      expect(r.error).toBeUndefined();
      expect(r.chunkMs).toHaveLength(4);
      expect(r.firstTokenMs).toBe(r.chunkMs[0]);
      expect(r.endMs!).toBeGreaterThanOrEqual(r.chunkMs[3]!);
      expect(r.outputTokens).toBe(4);
      expect(r.cachedTokens).toBe(1);
      expect(r.worker).toBe('w0');
      expect(r.startMs - r.scheduledMs).toBeLessThan(100);
    }
    expect(records.map((r) => r.scheduledMs)).toEqual([0, 50, 100]);
  });

  it('holds a fixed concurrency', async () => {
    maxInflight = 0;
    const records = await runLoad(items(12), { ...base, baseUrl, schedule: { mode: 'concurrency', concurrency: 3 } });
    expect(records).toHaveLength(12);
    expect(maxInflight).toBe(3);
  });

  it('stops by itself at the duration bound, cancelling what is left after the grace', async () => {
    const started = performance.now();
    const records = await runLoad(items(100, 'hello', 400), {
      ...base,
      baseUrl,
      schedule: { mode: 'rate', rate: 50, arrival: 'constant', seed: 1 },
      maxDurationMs: 300,
      graceMs: 200,
    });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(records.length).toBeLessThan(20);
    expect(records.every((r) => r.error?.type === 'cancelled')).toBe(true);
  });

  it('classifies HTTP errors and connection failures', async () => {
    const [http] = await runLoad(items(1, 'fail'), {
      ...base,
      baseUrl,
      schedule: { mode: 'concurrency', concurrency: 1 },
    });
    expect(http!.error?.type).toBe('http_503');
    const [conn] = await runLoad(items(1), {
      ...base,
      baseUrl: 'http://127.0.0.1:1',
      schedule: { mode: 'concurrency', concurrency: 1 },
    });
    expect(conn!.error?.type).toBe('connection');
  });
});
