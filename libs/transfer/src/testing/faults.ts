// Fault injection for tests: makes an agent misbehave on purpose (its TCP server stalls,
// slows down, corrupts what it sends or receives; its shm copies come out corrupted) so
// tests can see the typed errors a real failure produces. It implements the agent's
// TransferFaultHooks (fault-hooks.ts); production code never imports this file. Tests
// create agents with createFaultableAgent (or pass a FaultInjector as `faults`) and flip
// faults on and off with injectFaults.
import { TransferAgent } from '../agent.js';
import type { TransferAgentOptions } from '../agent-options.js';
import type { TransferFaultHooks } from '../fault-hooks.js';
import type { MemoryRegion } from '../region.js';

/** Misbehaviour of one agent; all off by default. */
export interface AgentFaults {
  /** TCP server: accept requests and never answer them (nor send any data). */
  stall?: boolean;
  /** TCP server: wait this long before sending each DATA frame of a read. */
  frameDelayMs?: number;
  /** TCP server: flip one byte of every block sent for a read, after its checksum was computed. */
  corruptReads?: boolean;
  /** TCP server: flip one byte of every block received for a write, before its checksum is verified. */
  corruptWrites?: boolean;
  /** shm backend of this agent: flip one byte of every destination block after the copy. */
  corruptShmCopies?: boolean;
}

/** The hooks of one agent, driven by its current AgentFaults. */
export class FaultInjector implements TransferFaultHooks {
  /** The faults in force; replace them with injectFaults. */
  readonly faults: AgentFaults = {};

  dropsRequest(): boolean {
    return this.faults.stall === true;
  }

  beforeReadFrame(): Promise<void> | undefined {
    const delayMs = this.faults.frameDelayMs;
    return delayMs ? new Promise((resolve) => setTimeout(resolve, delayMs)) : undefined;
  }

  replaceSentBlocks(region: MemoryRegion, ids: Uint32Array): Uint8Array[] | undefined {
    if (!this.faults.corruptReads) return undefined;
    return Array.from(ids, (id) => {
      const copy = region.view(id).slice();
      copy[0] ^= 0xff;
      return copy;
    });
  }

  receivedBlocks(region: MemoryRegion, ids: Uint32Array): void {
    if (this.faults.corruptWrites) for (const id of ids) region.view(id)[0] ^= 0xff;
  }

  copiedBlocks(destination: ArrayBufferLike, ids: Uint32Array, blockBytes: number): void {
    if (!this.faults.corruptShmCopies) return;
    const bytes = new Uint8Array(destination);
    for (const id of ids) bytes[id * blockBytes] ^= 0xff;
  }
}

/** Something that can be made to misbehave: a FaultInjector, or an agent made by createFaultableAgent. */
export type FaultInjectable = FaultInjector | TransferAgent;

const injectors = new WeakMap<TransferAgent, FaultInjector>();

/** Creates an agent whose faults injectFaults can change (none at first). */
export async function createFaultableAgent(options: TransferAgentOptions): Promise<TransferAgent> {
  const injector = new FaultInjector();
  const agent = await TransferAgent.create({ ...options, faults: injector });
  injectors.set(agent, injector);
  return agent;
}

/** Replaces the target's faults (`{}` clears them). */
export function injectFaults(target: FaultInjectable, faults: AgentFaults): void {
  const injector = target instanceof FaultInjector ? target : injectors.get(target);
  if (!injector) throw new Error(`agent ${(target as TransferAgent).agentId} was not made by createFaultableAgent`);
  const current = injector.faults;
  for (const key of Object.keys(current) as (keyof AgentFaults)[]) delete current[key];
  Object.assign(current, faults);
}
