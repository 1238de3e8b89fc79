// Every key of a body is honoured, inert, or refused with a 400 naming it: a setting the
// server cannot apply is never silently dropped.
import { describe, expect, it } from 'vitest';
import { validateRequest } from './validate.js';

const chat = (extra: object = {}) => ({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...extra });
const completion = (extra: object = {}) => ({ model: 'm', prompt: 'hi', ...extra });
const bodyOf = (kind: 'chat' | 'completion', extra: object) => (kind === 'chat' ? chat(extra) : completion(extra));

describe('request fields', () => {
  it.each([
    ['chat', { foo: 1 }, 'foo'],
    ['chat', { min_p: 0.1 }, 'min_p'],
    ['chat', { prompt: 'x' }, 'prompt'],
    ['chat', { echo: true }, 'echo'],
    ['completion', { messages: [] }, 'messages'],
    ['completion', { tools: [] }, 'tools'],
    ['chat', { constructor: 1 }, 'constructor'],
    ['chat', JSON.parse('{"__proto__": 1}') as object, '__proto__'],
  ] as const)('refuses an unknown %s field %j naming it', (kind, extra, param) => {
    expect(() => validateRequest(kind, bodyOf(kind, extra))).toThrow(
      expect.objectContaining({
        cls: 'invalid_argument',
        reason: 'unknown_parameter',
        param,
        message: `Unrecognized request argument supplied: ${param}`,
      }),
    );
  });

  it('shortens a huge unknown key in the error', () => {
    const key = 'k'.repeat(10_000);
    expect(() => validateRequest('chat', chat({ [key]: 1 }))).toThrow(
      expect.objectContaining({ param: `${'k'.repeat(64)}...` }),
    );
  });

  it.each([
    ['chat', { user: 'u-1', metadata: { a: 'b' }, store: false, service_tier: 'auto', parallel_tool_calls: true }],
    ['chat', { prompt_cache_key: 'k', safety_identifier: 's' }],
    ['completion', { user: 'u-1' }],
  ] as const)('accepts the inert %s fields %j', (kind, extra) => {
    expect(() => validateRequest(kind, bodyOf(kind, extra))).not.toThrow();
  });

  it.each([
    [{ user: 5 }, 'user', "'user' must be a string"],
    [{ metadata: [] }, 'metadata', "'metadata' must be an object"],
    [{ store: 'no' }, 'store', "'store' must be a boolean"],
  ])('type-checks the inert field %j', (extra, param, message) => {
    expect(() => validateRequest('chat', chat(extra))).toThrow(
      expect.objectContaining({ param, message, reason: 'invalid_value' }),
    );
  });

  // [kind, field, neutral values (accepted), values the server cannot honour (refused)]
  it.each([
    ['chat', 'logprobs', [false], [true]],
    ['completion', 'logprobs', [], [0, 5]],
    ['chat', 'top_logprobs', [0], [1, 20]],
    ['completion', 'best_of', [1], [2]],
    ['completion', 'suffix', [''], ['tail']],
    ['chat', 'tools', [[]], [[{ type: 'function', function: { name: 'f' } }], 'x']],
    ['chat', 'functions', [[]], [[{ name: 'f' }]]],
    ['chat', 'tool_choice', ['none', 'auto'], ['required', { type: 'function', function: { name: 'f' } }]],
    ['chat', 'function_call', ['none', 'auto'], [{ name: 'f' }]],
    ['chat', 'response_format', [{ type: 'text' }], [{ type: 'json_object' }, { type: 'json_schema' }, 'text']],
    ['chat', 'logit_bias', [{}], [{ '50256': -100 }]],
    ['completion', 'logit_bias', [{}], [{ '1': 5 }]],
    ['chat', 'modalities', [['text']], [['text', 'audio']]],
    ['chat', 'audio', [], [{ voice: 'alloy', format: 'wav' }]],
    ['chat', 'prediction', [], [{ type: 'content', content: 'x' }]],
    ['chat', 'reasoning_effort', [], ['high']],
    ['chat', 'frequency_penalty', [0], [0.5, -1]],
    ['completion', 'presence_penalty', [0], [2]],
  ] as const)('%s %s: takes only its neutral values', (kind, field, neutral, refused) => {
    for (const value of [...neutral, null]) {
      expect(() => validateRequest(kind, bodyOf(kind, { [field]: value }))).not.toThrow();
    }
    for (const value of refused) {
      expect(() => validateRequest(kind, bodyOf(kind, { [field]: value }))).toThrow(
        expect.objectContaining({ cls: 'invalid_argument', reason: 'unsupported_parameter', param: field }),
      );
    }
  });

  it('refuses penalties outside [-2, 2] as invalid, before saying they are unsupported', () => {
    for (const value of [2.5, -3, '0']) {
      expect(() => validateRequest('chat', chat({ presence_penalty: value }))).toThrow(
        expect.objectContaining({
          reason: 'invalid_value',
          param: 'presence_penalty',
          message: "'presence_penalty' must be a number between -2 and 2",
        }),
      );
    }
  });

  it('checks the keys of each message', () => {
    const withMessage = (m: object) => chat({ messages: [{ role: 'user', content: 'hi' }, m] });
    expect(() =>
      validateRequest('chat', withMessage({ role: 'assistant', content: 'x', name: 'bot', tool_calls: [] })),
    ).not.toThrow();
    expect(() =>
      validateRequest('chat', withMessage({ role: 'tool', content: 'x', tool_call_id: 'c1' })),
    ).not.toThrow();
    expect(() => validateRequest('chat', withMessage({ role: 'user', content: 'x', name: 3 }))).toThrow(
      expect.objectContaining({ param: 'messages[1].name', reason: 'invalid_value' }),
    );
    expect(() =>
      validateRequest(
        'chat',
        withMessage({ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function' }] }),
      ),
    ).toThrow(expect.objectContaining({ param: 'messages[1].tool_calls', reason: 'unsupported_parameter' }));
    expect(() => validateRequest('chat', withMessage({ role: 'user', content: 'x', weight: 2 }))).toThrow(
      expect.objectContaining({ param: 'messages[1].weight', reason: 'unknown_parameter' }),
    );
  });

  it('checks the keys of stream_options', () => {
    expect(validateRequest('chat', chat({ stream: true, stream_options: { include_usage: true } })).includeUsage).toBe(
      true,
    );
    expect(() =>
      validateRequest('chat', chat({ stream: true, stream_options: { continuous_usage_stats: true } })),
    ).toThrow(expect.objectContaining({ param: 'stream_options.continuous_usage_stats', reason: 'unknown_parameter' }));
  });
});
