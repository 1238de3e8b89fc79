// A model card and a model list for unit tests of the frontend: a real tokenizer that
// needs no file (gpt-tokenizer's o200k_base) with the ChatML template. FakeModelCatalog has
// the shape of the frontend's ModelCatalog port (services/frontend/src/pipeline/ports.ts).
import type { ModelCard } from '@armature/runtime';

/** The model name testModelCard serves. */
export const TEST_MODEL = 'test-model';

/** A model card for tests; `overrides` replace its fields (context length 4096 by default). */
export function testModelCard(overrides: Partial<ModelCard> = {}): ModelCard {
  return {
    model: TEST_MODEL,
    blockSize: 16,
    totalKvBlocks: 1024,
    maxNumSeqs: 8,
    maxNumBatchedTokens: 2048,
    contextLength: 4096,
    tokenizer: 'gpt-tokenizer:o200k_base',
    chatTemplate: 'chatml',
    eosTokenIds: [],
    engine: 'fake',
    ...overrides,
  };
}

/** Models by name, each served by the workers named (none unless given). */
export class FakeModelCatalog {
  private readonly served = new Map<string, { card: ModelCard; workers: Set<string>; created: number }>();

  constructor(cards: ModelCard[], workers: string[] = []) {
    for (const card of cards) this.served.set(card.model, { card, workers: new Set(workers), created: 0 });
  }

  model(name: string): { card: ModelCard; workers: Set<string>; created: number } | undefined {
    return this.served.get(name);
  }
}
