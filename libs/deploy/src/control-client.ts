// The client of the local supervisor's control API (control-api.ts), for the planner's
// local connector and for tools: reads replica counts and sets them, waiting as long as a
// scale takes (a scale-down waits out the drains). It speaks HTTP over the Unix socket or
// the loopback port the address names; it does not retry (the caller decides).
import { request } from 'node:http';
import { readFile } from 'node:fs/promises';
import { envString } from '@armature/runtime';
import type { ReplicaStatus, ScaleResult } from './control-api.js';
import type { ServiceKind } from './service-kinds.js';

/** How long scale() waits by default: a scale-down waits for drains, which can be long. */
export const CONTROL_SCALE_TIMEOUT_MS = 15 * 60_000;
const CONTROL_READ_TIMEOUT_MS = 10_000;

/** A control API call that failed: the server's answer (status, type, code), or no answer (status undefined). */
export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(
    message: string,
    /** The HTTP status; undefined when no answer came (unreachable, timed out). */
    readonly status: number | undefined,
    /** The server's error type, or `unreachable` / `timeout`. */
    readonly type: string,
    /** The server's stable reason (e.g. `unknown_kind`, `scale_failed`), or `unreachable` / `timeout`. */
    readonly code: string,
  ) {
    super(message);
  }
}

type Endpoint = { socketPath: string } | { host: string; port: number };

/** Reads the address `armature up` wrote (e.g. `.armature/<graph>/control.address`). */
export async function readControlAddress(addressFile: string): Promise<string> {
  return (await readFile(addressFile, 'utf8')).trim();
}

export class ControlClient {
  private readonly endpoint: Endpoint;

  /** `address`: `unix:/abs/path/control.sock` or `http://host:port`. */
  constructor(readonly address: string) {
    if (address.startsWith('unix:')) {
      const socketPath = address.slice('unix:'.length);
      if (socketPath === '') throw new Error(`control address ${address}: no socket path`);
      this.endpoint = { socketPath };
      return;
    }
    let url: URL;
    try {
      url = new URL(address);
    } catch {
      throw new Error(`control address ${JSON.stringify(address)}: expected unix:/path or http://host:port`);
    }
    if (url.protocol !== 'http:' || url.port === '')
      throw new Error(`control address ${address}: expected unix:/path or http://host:port`);
    this.endpoint = { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) };
  }

  /** The client for ARMATURE_CONTROL_ADDRESS (set by the launcher for planner replicas); throws when unset. */
  static fromEnv(env: Record<string, string | undefined> = process.env): ControlClient {
    const address = envString('ARMATURE_CONTROL_ADDRESS', '', env);
    if (address === '')
      throw new Error('ARMATURE_CONTROL_ADDRESS is not set: this process was not started with a control API');
    return new ControlClient(address);
  }

  /** Resolves once the server answers GET /v1/health (waits up to `timeoutMs`, default 10 s). */
  async health(options: { timeoutMs?: number } = {}): Promise<void> {
    await this.call('GET', '/v1/health', undefined, options.timeoutMs ?? CONTROL_READ_TIMEOUT_MS);
  }

  /** Every service's desired, running, ready and starting replicas. */
  status(options: { timeoutMs?: number } = {}): Promise<ReplicaStatus> {
    return this.call('GET', '/v1/replicas', undefined, options.timeoutMs ?? CONTROL_READ_TIMEOUT_MS);
  }

  /**
   * Sets `kind`'s replica count; resolves with its counts once new replicas are ready or
   * surplus ones have drained and exited (waits up to `timeoutMs`, default 15 minutes).
   */
  scale(kind: ServiceKind, replicas: number, options: { timeoutMs?: number } = {}): Promise<ScaleResult> {
    return this.call(
      'PUT',
      `/v1/replicas/${encodeURIComponent(kind)}`,
      { replicas },
      options.timeoutMs ?? CONTROL_SCALE_TIMEOUT_MS,
    );
  }

  private call<T>(method: string, path: string, body: unknown, timeoutMs: number): Promise<T> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((done, reject) => {
      const req = request({
        ...this.endpoint,
        method,
        path,
        headers:
          text === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      });
      const timer = setTimeout(() => {
        req.destroy(
          new ControlError(
            `${method} ${path}: no answer from ${this.address} within ${timeoutMs} ms`,
            undefined,
            'timeout',
            'timeout',
          ),
        );
      }, timeoutMs);
      const settle = (fn: () => void): void => {
        clearTimeout(timer);
        fn();
      };
      req.once('error', (err) =>
        settle(() =>
          reject(
            err instanceof ControlError
              ? err
              : new ControlError(
                  `${method} ${path}: ${this.address} unreachable: ${err.message}`,
                  undefined,
                  'unreachable',
                  'unreachable',
                ),
          ),
        ),
      );
      req.once('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', (err) => settle(() => reject(err)));
        res.once('end', () =>
          settle(() => {
            const raw = Buffer.concat(chunks).toString('utf8');
            let doc: unknown;
            try {
              doc = JSON.parse(raw);
            } catch {
              doc = undefined;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300 && doc !== undefined) return done(doc as T);
            const error = (doc as { error?: { message?: string; type?: string; code?: string } } | undefined)?.error;
            reject(
              new ControlError(
                error?.message ?? `${method} ${path}: ${status} ${raw.slice(0, 200)}`,
                status,
                error?.type ?? 'http_error',
                error?.code ?? `http_${status}`,
              ),
            );
          }),
        );
      });
      req.end(text);
    });
  }
}
