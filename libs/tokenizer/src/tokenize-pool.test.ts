// TokenizePool: prompts tokenize on its threads with the main thread's tokens, the event loop
// stays free meanwhile, and a job past its deadline takes its own thread down, not the pool.
// The threads run the built dist/tokenize-worker.js: `npx tsc -b libs/tokenizer` first.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTestModel } from '@armature/engine';
import { ArmatureError } from '@armature/runtime';
import { applyChatTemplate, loadTokenizer, TokenizePool, type ChatMessage } from './index.js';

const GPT = 'gpt-tokenizer:o200k_base';
let gguf: string;
let pool: TokenizePool;

beforeAll(async () => {
  gguf = `gguf:${await ensureTestModel()}`;
  pool = new TokenizePool({ threads: 2 });
});

afterAll(() => pool.close());

/** Letters from a seeded generator: one long run whose parts never repeat, so no cache shortens it. */
function randomLetters(length: number, seed: number): string {
  let state = seed;
  const codes = new Array<number>(length);
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    codes[i] = 97 + (state % 26);
  }
  let text = '';
  for (let i = 0; i < length; i += 8192) text += String.fromCharCode(...codes.slice(i, i + 8192));
  return text;
}

const LARGE_TEXT =
  'The cat sat on the mat, and then it said: "hello there" 🙂 漢字.\n'.repeat(2000) +
  '🦙'.repeat(3000) +
  '\n'.repeat(500) +
  ' '.repeat(700) +
  'a'.repeat(2000);

describe('TokenizePool', () => {
  it('gives the tokens the main thread gives, for gpt-tokenizer and gguf, text and chats', async () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: LARGE_TEXT },
    ];
    for (const id of [GPT, gguf]) {
      const tok = await loadTokenizer(id);
      expect(await pool.encode(id, LARGE_TEXT)).toEqual(tok.encode(LARGE_TEXT));
      for (const template of id === gguf ? ['chatml', 'gguf'] : ['chatml', 'plain']) {
        expect(await pool.applyChatTemplate(id, template, messages)).toEqual(
          applyChatTemplate(template, messages, tok),
        );
      }
    }
  });

  it('keeps the event loop free while a large prompt tokenizes', async () => {
    await pool.encode(GPT, 'warm'); // the thread has loaded the tokenizer
    const text = randomLetters(1024 * 1024, 1);
    let last = performance.now();
    let longestGap = 0;
    let ticks = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      ticks++;
    }, 10);
    const start = performance.now();
    try {
      const ids = await pool.encode(GPT, text);
      expect(ids.length).toBeGreaterThan(100_000);
    } finally {
      clearInterval(ticker);
    }
    const elapsed = performance.now() - start;
    expect(elapsed).toBeGreaterThan(200); // long enough for the gaps to mean something
    expect(longestGap).toBeLessThan(200);
    expect(ticks).toBeGreaterThan(elapsed / 50);
  });

  it('rejects a job past its deadline, and replaces its thread', async () => {
    const single = new TokenizePool({ threads: 1 });
    try {
      const tok = await loadTokenizer(GPT);
      await single.encode(GPT, 'warm');
      const slow = single.encode(GPT, randomLetters(1024 * 1024, 2), { deadlineMs: 50 });
      await expect(slow).rejects.toMatchObject({ cls: 'deadline_exceeded', reason: 'tokenize_deadline_exceeded' });
      await expect(slow).rejects.toBeInstanceOf(ArmatureError);
      expect(await single.encode(GPT, 'after the deadline')).toEqual(tok.encode('after the deadline'));
    } finally {
      await single.close();
    }
  });

  it('cancels a job when its signal aborts', async () => {
    const controller = new AbortController();
    const job = pool.encode(GPT, randomLetters(1024 * 1024, 3), { signal: controller.signal });
    setTimeout(() => controller.abort(new ArmatureError('cancelled', 'cancelled', 'request cancelled')), 20);
    await expect(job).rejects.toMatchObject({ cls: 'cancelled', reason: 'cancelled' });
    await expect(pool.encode(GPT, 'x', { signal: controller.signal })).rejects.toMatchObject({ cls: 'cancelled' });
    expect(await pool.encode(GPT, 'still serving')).toEqual((await loadTokenizer(GPT)).encode('still serving'));
  });

  it("rejects with the thread's own ArmatureError, and keeps the thread", async () => {
    await expect(pool.encode('nope:x', 'x')).rejects.toMatchObject({
      cls: 'failed_precondition',
      reason: 'unknown_tokenizer',
    });
    await expect(pool.applyChatTemplate(GPT, 'gguf', [{ role: 'user', content: 'hi' }])).rejects.toMatchObject({
      reason: 'unknown_chat_template',
    });
  });

  it('rejects what is pending at close, and everything after', async () => {
    const closing = new TokenizePool({ threads: 1 });
    const running = closing.encode(GPT, randomLetters(1024 * 1024, 4));
    const queued = closing.encode(GPT, 'queued');
    await closing.close();
    await expect(running).rejects.toMatchObject({ cls: 'unavailable', reason: 'tokenize_pool_closed' });
    await expect(queued).rejects.toMatchObject({ cls: 'unavailable', reason: 'tokenize_pool_closed' });
    await expect(closing.encode(GPT, 'later')).rejects.toMatchObject({ reason: 'tokenize_pool_closed' });
  });

  it('refuses explicit bad options', () => {
    expect(() => new TokenizePool({ threads: 0 })).toThrow(RangeError);
    expect(() => new TokenizePool({ deadlineMs: 1.5 })).toThrow(RangeError);
  });

  it('never keeps a process alive: one that never closes its pool exits when its work is done', async () => {
    const index = new URL('../dist/index.js', import.meta.url).href;
    const script = `
      import { TokenizePool } from ${JSON.stringify(index)};
      const pool = new TokenizePool();
      console.log((await pool.encode(${JSON.stringify(GPT)}, 'hello world')).join(','));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const timeout = new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000).unref());
    const code = await Promise.race([exited, timeout]);
    if (code === 'still running') child.kill();
    const tok = await loadTokenizer(GPT);
    expect({ code, out: out.trim() }).toEqual({ code: 0, out: tok.encode('hello world').join(',') });
  });
});
