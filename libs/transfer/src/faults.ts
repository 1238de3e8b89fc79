// Fault injection for tests: makes an agent misbehave on purpose (its TCP server stalls,
// slows down, corrupts what it sends or receives; its shm copies come out corrupted) so
// tests can see the typed errors a real failure produces. Not exported from the package
// index; tests and the test peer import it directly.

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

/** Something that can be made to misbehave (a TransferAgent). */
export interface FaultInjectable {
  readonly faults: AgentFaults;
}

/** Replaces the agent's faults (`{}` clears them). */
export function injectFaults(target: FaultInjectable, faults: AgentFaults): void {
  const current = target.faults;
  for (const key of Object.keys(current) as (keyof AgentFaults)[]) delete current[key];
  Object.assign(current, faults);
}
