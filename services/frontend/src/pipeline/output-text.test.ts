// Stage 5: incremental detokenizing across messages and stop strings.
import { describe, expect, it } from 'vitest';
import { validateRequest } from '@armature/openai';
import { RequestContext } from '@armature/runtime';
import { FakeModelCatalog, TEST_MODEL, testModelCard } from '@armature/testing';
import { OutputText } from './output-text.js';
import { prepare } from './prepare.js';
import type { PipelineEvent } from './types.js';

const models = new FakeModelCatalog([testModelCard()]);

async function outputFor(stop: string[] = []) {
  const request = validateRequest('completion', { model: TEST_MODEL, prompt: 'x', ...(stop.length ? { stop } : {}) });
  const p = await prepare(models, new RequestContext(), request);
  return { out: new OutputText(p), tokenizer: p.tokenizer };
}

const textOf = (events: PipelineEvent[]): string => events.map((e) => (e.type === 'text' ? e.text : '')).join('');

describe('OutputText', () => {
  it('emits a character split over byte tokens only once it is whole', async () => {
    const { out, tokenizer } = await outputFor();
    const ids = tokenizer.encode('naïve 🦙 ok');
    const events = ids.map((id) => out.push([id]));
    events.push(...out.finish('stop'));
    expect(textOf(events)).toBe('naïve 🦙 ok');
    expect(events.some((e) => e.type === 'text' && e.text.includes('\uFFFD'))).toBe(false);
    expect(events.filter((e) => e.type === 'text' && e.tokens === 1)).toHaveLength(ids.length); // ITL sees every token
    expect(events.at(-1)).toEqual({ type: 'end', finishReason: 'stop', completionTokens: ids.length });
  });

  it('cuts the output before a stop string that spans messages, and finishes with stop', async () => {
    const { out, tokenizer } = await outputFor(['STOP']);
    const events = ['one S', 'TO', 'P two'].map((t) => out.push(tokenizer.encode(t)));
    expect(out.stopped).toBe(true);
    events.push(...out.finish('length'));
    expect(textOf(events)).toBe('one ');
    expect(events.at(-1)).toMatchObject({ type: 'end', finishReason: 'stop' });
  });

  it('holds back as much as could start a stop string, and lets it out at the end', async () => {
    const { out, tokenizer } = await outputFor(['STOP']);
    const first = out.push(tokenizer.encode('one ST'));
    expect(first).toMatchObject({ type: 'text', text: 'one' }); // 'STOP'.length - 1 characters held back
    const rest = [...out.finish('length')];
    expect(rest).toEqual([
      { type: 'text', text: ' ST', tokens: 0 },
      { type: 'end', finishReason: 'length', completionTokens: tokenizer.encode('one ST').length },
    ]);
  });
});
