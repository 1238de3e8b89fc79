// Transfer agent options, compiled once: raw options with documented defaults become
// validated, fully populated options, and explicit bad values throw `bad_request` before
// anything is started.
import { hostname } from 'node:os';
import { TransferError } from './errors.js';
import { NO_FAULTS, type TransferFaultHooks } from './fault-hooks.js';
import { loadNative, nativeStatus, type NativeTransfer } from './native.js';
import type { ChecksumAlgorithm, TransferBackendKind } from './types.js';

export interface TransferAgentOptions {
  /** Unique among agents; letters, digits, '.', '_' and '-' (it names shm objects). */
  agentId: string;
  /** Interface the TCP server binds (default 127.0.0.1). */
  host?: string;
  /** Host advertised to peers (default `host`, or the hostname when `host` is a wildcard). */
  advertiseHost?: string;
  /** TCP port (default 0: a free port). */
  port?: number;
  /** Backends in preference order (default ['shm', 'tcp'] when the addon is loaded, else ['tcp']). */
  backends?: TransferBackendKind[];
  /** Deadline of a transfer unless the request sets one (default 30000 ms). */
  timeoutMs?: number;
  /** Block checksum over TCP: 'auto' (default) negotiates the fastest both sides have; 'none' disables it. */
  checksum?: 'auto' | ChecksumAlgorithm;
  /** The addon to use (default loadNative(); null: run without it). */
  native?: NativeTransfer | null;
  /** Where tests make the agent misbehave (default NO_FAULTS: nothing happens). */
  faults?: TransferFaultHooks;
}

export interface CompiledAgentOptions {
  agentId: string;
  host: string;
  advertiseHost: string;
  port: number;
  backends: TransferBackendKind[];
  timeoutMs: number;
  checksum: 'auto' | ChecksumAlgorithm;
  native: NativeTransfer | undefined;
  faults: TransferFaultHooks;
}

const AGENT_ID = /^[A-Za-z0-9._-]{1,128}$/;
const CHECKSUM_CHOICES: readonly string[] = ['auto', 'xxh3-64', 'armature-mx64', 'none'];

/** Validates options and fills in defaults; throws `bad_request` on explicit bad values. */
export function compileAgentOptions(options: TransferAgentOptions): CompiledAgentOptions {
  const bad = (message: string): TransferError => new TransferError('bad_request', `transfer agent: ${message}`);
  if (typeof options.agentId !== 'string' || !AGENT_ID.test(options.agentId)) {
    throw bad(`agentId must match ${AGENT_ID}, got '${options.agentId}'`);
  }
  const native = options.native === null ? undefined : (options.native ?? loadNative());
  const host = options.host ?? '127.0.0.1';
  const wildcard = host === '0.0.0.0' || host === '::';
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw bad(`port must be in [0, 65535], got ${port}`);
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw bad(`timeoutMs must be positive, got ${timeoutMs}`);
  const backends = options.backends ?? (native ? ['shm', 'tcp'] : ['tcp']);
  if (
    backends.length === 0 ||
    backends.some((b) => b !== 'shm' && b !== 'tcp') ||
    new Set(backends).size !== backends.length
  ) {
    throw bad(`backends must be distinct kinds among 'shm' and 'tcp', got ${JSON.stringify(backends)}`);
  }
  if (backends.includes('shm') && !native) {
    throw bad(`the shm backend needs the native addon: ${nativeStatus().reason ?? 'not loaded'}`);
  }
  const checksum = options.checksum ?? 'auto';
  if (!CHECKSUM_CHOICES.includes(checksum)) throw bad(`unknown checksum '${checksum}'`);
  if (checksum === 'armature-mx64' && !native) throw bad(`checksum armature-mx64 needs the native addon`);
  return {
    agentId: options.agentId,
    host,
    advertiseHost: options.advertiseHost ?? (wildcard ? hostname() : host),
    port,
    backends: [...backends],
    timeoutMs,
    checksum,
    native,
    faults: options.faults ?? NO_FAULTS,
  };
}
