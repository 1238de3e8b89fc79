// A transfer agent in a child process (dist/testing/test-peer.js), driven with JSON commands: used
// by the tests and the benchmark. Needs the package built (`npx tsc -b libs/transfer`).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PeerCommand, PeerConfig } from './test-peer.js';
import type { AgentMetadata } from '../types.js';

// The same file from src/testing/ (vitest) and from dist/testing/ (the benchmark).
export const PEER_SCRIPT = fileURLToPath(new URL('../../dist/testing/test-peer.js', import.meta.url));

export interface PeerReply {
  ok: boolean;
  kind?: string;
  message?: string;
  digests?: string[];
  port?: number;
  stats?: { bytes: number; blocks: number; durationMs: number; backend: string };
}

export class PeerProcess {
  private readonly waiting = new Map<number, (reply: PeerReply) => void>();
  private nextId = 1;
  private stderr = '';
  readonly exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly metadata: AgentMetadata,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
      else child.once('exit', (code) => resolve(code));
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    // A killed peer's stdin fails with EPIPE; the pending call is answered by the exit below.
    child.stdin!.on('error', () => {});
    child.once('exit', (code, signal) => {
      for (const answer of this.waiting.values())
        answer({ ok: false, message: `test peer exited (${code ?? signal})` });
      this.waiting.clear();
    });
  }

  /** Spawns a peer and waits until its agent is up. */
  static async start(config: PeerConfig, env: Record<string, string> = {}): Promise<PeerProcess> {
    if (!existsSync(PEER_SCRIPT)) throw new Error(`${PEER_SCRIPT} is missing: run \`npx tsc -b libs/transfer\` first`);
    const child = spawn(process.execPath, [PEER_SCRIPT, JSON.stringify(config)], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const lines = createInterface({ input: child.stdout! });
    let peer: PeerProcess | undefined;
    return new Promise((resolve, reject) => {
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.once('exit', (code) => {
        if (!peer) reject(new Error(`test peer exited (${code}) before it was ready: ${stderr}`));
      });
      lines.on('line', (line) => {
        const message = JSON.parse(line) as { event?: string; metadata?: AgentMetadata; id?: number } & PeerReply;
        if (message.event === 'ready') {
          peer = new PeerProcess(child, message.metadata!);
          resolve(peer);
        } else if (peer && message.id !== undefined) {
          peer.waiting.get(message.id)?.(message);
          peer.waiting.delete(message.id);
        }
      });
    });
  }

  /** Sends a command and resolves with the peer's reply. */
  call(command: PeerCommand, timeoutMs = 20_000): Promise<PeerReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`test peer: no reply to ${command.cmd} (${this.stderr})`)),
        timeoutMs,
      );
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        this.waiting.delete(id);
        clearTimeout(timer);
        resolve({ ok: false, message: `test peer exited (${this.child.exitCode ?? this.child.signalCode})` });
        return;
      }
      this.child.stdin!.write(`${JSON.stringify({ id, ...command })}\n`);
    });
  }

  /** Block digests of a region in the peer. */
  async digests(regionId: number, ids: number[]): Promise<string[]> {
    const reply = await this.call({ cmd: 'digest', regionId, ids });
    if (!reply.ok) throw new Error(`digest failed: ${reply.message}`);
    return reply.digests!;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }

  /** Asks the peer to close its agent and waits for the process to exit on its own (kills it after `graceMs`). */
  async stop(graceMs = 5_000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      await this.call({ cmd: 'close' }, graceMs).catch(() => {});
      const timer = setTimeout(() => this.kill(), graceMs);
      const code = await this.exited;
      clearTimeout(timer);
      return code;
    }
    return this.child.exitCode;
  }

  get stderrText(): string {
    return this.stderr;
  }
}
