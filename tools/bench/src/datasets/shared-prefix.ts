// Generated shared-prefix workload, after SGLang's `generated-shared-prefix` dataset:
// `groups` system prompts, each followed by `promptsPerGroup` distinct questions. Requests
// are interleaved across groups in a seeded shuffle, so a prefix cache (and a KV-aware
// router) has to hold several groups at once to hit.
import { ArmatureError } from '@armature/runtime';
import { PromptBuilder } from './prompt-builder.js';
import { createRng, deriveSeed, hashString, shuffle } from './random.js';
import type { Workload, WorkloadRequest } from './types.js';
import { finishWorkload, resolveDatasetOptions, type DatasetOptions } from './workload.js';

export interface SharedPrefixOptions extends DatasetOptions {
  groups: number;
  promptsPerGroup: number;
  /** Tokens of the system prompt each group shares. */
  systemPromptTokens: number;
  /** Tokens of each prompt's own question, after the system prompt. */
  questionTokens: number;
  outputTokens: number;
}

/** Builds `groups * promptsPerGroup` requests (fewer with `limit`), order shuffled by `seed`. */
export async function generateSharedPrefix(options: SharedPrefixOptions): Promise<Workload> {
  const resolved = resolveDatasetOptions(options);
  const { groups, promptsPerGroup, systemPromptTokens, questionTokens, outputTokens } = options;
  const check = (name: string, value: number, min: number): void => {
    if (!Number.isSafeInteger(value) || value < min) {
      throw new ArmatureError('invalid_argument', 'bad_option', `${name} must be an integer >= ${min}, got ${value}`);
    }
  };
  check('groups', groups, 1);
  check('promptsPerGroup', promptsPerGroup, 1);
  check('systemPromptTokens', systemPromptTokens, 0);
  check('questionTokens', questionTokens, systemPromptTokens === 0 ? 1 : 0);
  check('outputTokens', outputTokens, 1);

  const builder = await PromptBuilder.create(options.tokenizer, { seed: resolved.seed });
  const slots: Array<{ group: number; prompt: number }> = [];
  for (let group = 0; group < groups; group++) {
    for (let prompt = 0; prompt < promptsPerGroup; prompt++) slots.push({ group, prompt });
  }
  shuffle(slots, createRng(deriveSeed(resolved.seed, hashString('shared-prefix-order'))));
  const groupLabel = (group: number): string => `shared-prefix-g${pad(group, groups)}`;
  const requests = slots.slice(0, resolved.limit).map(({ group, prompt }): WorkloadRequest => ({
    id: `${groupLabel(group)}-p${pad(prompt, promptsPerGroup)}`,
    ...builder.compose([
      builder.block('shared-prefix-system', group, systemPromptTokens),
      builder.text('shared-prefix-question', group * promptsPerGroup + prompt, questionTokens),
    ]),
    targetInputTokens: systemPromptTokens + questionTokens,
    outputTokens: Math.min(resolved.outputCap, outputTokens),
    prefixGroup: groupLabel(group),
  }));
  const name =
    `shared-prefix:groups=${groups},prompts=${promptsPerGroup},system=${systemPromptTokens},` +
    `question=${questionTokens},output=${outputTokens},seed=${resolved.seed}`;
  return finishWorkload(name, requests, options.tokenizer, resolved);
}

function pad(index: number, total: number): string {
  return String(index).padStart(Math.max(2, String(total - 1).length), '0');
}
