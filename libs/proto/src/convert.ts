// Converters between the domain types every service shares (@armature/runtime's
// ModelCard and WorkerLoad) and their proto messages, so the two cannot drift: each
// converter names every field, and the round-trip test fails when either side gains one.
import type { ModelCard, WorkerLoad as DomainWorkerLoad } from '@armature/runtime';
import type { ModelDeploymentCard, WorkerLoad } from './gen/armature/v1/common.js';

const KV_EVENTS = new Set(['armature', 'opaque', 'none']);

/** The proto card of a domain card (kvEvents unset is the empty string). */
export function modelCardToProto(card: ModelCard): ModelDeploymentCard {
  return {
    model: card.model,
    blockSize: card.blockSize,
    totalKvBlocks: card.totalKvBlocks,
    maxNumSeqs: card.maxNumSeqs,
    maxNumBatchedTokens: card.maxNumBatchedTokens,
    contextLength: card.contextLength,
    tokenizer: card.tokenizer,
    chatTemplate: card.chatTemplate,
    eosTokenIds: [...card.eosTokenIds],
    engine: card.engine,
    kvEvents: card.kvEvents ?? '',
  };
}

/** The domain card of a proto card; an unknown kvEvents value is left unset. */
export function modelCardFromProto(card: ModelDeploymentCard): ModelCard {
  const out: ModelCard = {
    model: card.model,
    blockSize: card.blockSize,
    totalKvBlocks: card.totalKvBlocks,
    maxNumSeqs: card.maxNumSeqs,
    maxNumBatchedTokens: card.maxNumBatchedTokens,
    contextLength: card.contextLength,
    tokenizer: card.tokenizer,
    chatTemplate: card.chatTemplate,
    eosTokenIds: [...card.eosTokenIds],
    engine: card.engine,
  };
  if (KV_EVENTS.has(card.kvEvents)) out.kvEvents = card.kvEvents as NonNullable<ModelCard['kvEvents']>;
  return out;
}

/** The proto load of a domain load (the same five numbers). */
export function workerLoadToProto(load: DomainWorkerLoad): WorkerLoad {
  return copyLoad(load);
}

/** The domain load of a proto load. */
export function workerLoadFromProto(load: WorkerLoad): DomainWorkerLoad {
  return copyLoad(load);
}

function copyLoad(load: DomainWorkerLoad): DomainWorkerLoad {
  return {
    activeDecodeBlocks: load.activeDecodeBlocks,
    activePrefillTokens: load.activePrefillTokens,
    waitingRequests: load.waitingRequests,
    runningRequests: load.runningRequests,
    kvUsage: load.kvUsage,
  };
}
