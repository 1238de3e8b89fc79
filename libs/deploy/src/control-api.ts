// The local supervisor's control API: a small HTTP/1.1 JSON API on a Unix socket (owner
// only) through which a planner process, or an operator with curl, reads and changes the
// replica counts of a running `armature up`. It applies counts through the scale port and
// answers once the scale completed; it does not decide counts (the planner does) and does
// not start or stop processes itself (the supervisor does). The client is control-client.ts.
import { connect } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmod, lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ArmatureError, asArmatureError, openAiErrorBody, type ErrorClass } from '@armature/runtime';
import { LaunchError } from './errors.js';
import type { DeploymentGraph } from './graph.js';
import type { ScalePort } from './scale-port.js';
import { SERVICE_KINDS, WORKER_KINDS, type ServiceKind } from './service-kinds.js';
import type { Replica } from './supervisor.js';

/** Kinds the API scales: workers and routers. Frontends bind the graph's port + i; the planner does not scale itself. */
export const SCALABLE_KINDS: readonly ServiceKind[] = [...WORKER_KINDS, 'router'];
/** The largest request body the API reads. */
export const CONTROL_MAX_BODY_BYTES = 64 * 1024;
/** Longest Unix socket path bind() takes (sun_path less its NUL: 108 bytes on Linux, 104 elsewhere). */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** What the control API needs of a running deployment; a Supervisor is one. */
export interface ControlTarget extends ScalePort {
  readonly graph: DeploymentGraph;
  /** The replicas of `kind` that are not being scaled away. */
  list(kind: ServiceKind): readonly Replica[];
}

/** One service's replica counts. */
export interface ServiceReplicas {
  /** What the last scale asked for, or the graph's count. */
  desired: number;
  /** Replicas with a process now. */
  running: number;
  /** Replicas that wrote their ready line and still run. */
  ready: number;
  /** Replicas asked for and not ready: starting, waiting out a restart backoff, not started yet. */
  starting: number;
}

/** GET /v1/replicas: every kind in the graph. */
export interface ReplicaStatus {
  services: Partial<Record<ServiceKind, ServiceReplicas>>;
}

/** PUT /v1/replicas/<kind>: the kind's counts once the scale completed. */
export interface ScaleResult extends ServiceReplicas {
  kind: ServiceKind;
}

export interface ControlServerOptions {
  /** The Unix socket to listen on; when longer than MAX_SOCKET_PATH_BYTES, a loopback port instead. */
  socketPath: string;
  /** Where the address is written (default control.address beside the socket). */
  addressFile?: string;
  /** Scale requests wait for this first (launch() passes the supervisor's start; default none). */
  notBefore?: Promise<unknown>;
}

export interface ControlServer {
  /** `unix:/abs/path/control.sock`, or `http://127.0.0.1:<port>` when the socket path was too long. */
  readonly address: string;
  /** The file holding `address`. */
  readonly addressFile: string;
  /** Stops listening, cuts open connections, removes the socket and the address file; never throws. */
  close(): Promise<void>;
}

/** The counts of `kind` from its replicas' states. */
export function serviceReplicas(target: ControlTarget, kind: ServiceKind): ServiceReplicas {
  const replicas = target.list(kind);
  const running = replicas.filter((r) => r.process !== undefined).length;
  const ready = replicas.filter((r) => r.process !== undefined && r.state === 'ready').length;
  const starting = replicas.filter((r) => ['pending', 'starting', 'restarting'].includes(r.state)).length;
  return { desired: target.replicas(kind), running, ready, starting };
}

/** GET /v1/replicas's answer. */
export function replicaStatus(target: ControlTarget): ReplicaStatus {
  return { services: Object.fromEntries(target.graph.services.map((s) => [s.kind, serviceReplicas(target, s.kind)])) };
}

/**
 * Serves the control API for `target` on `options.socketPath` (mode 0600; a stale socket
 * file is removed, a live one is refused), or on 127.0.0.1 when that path is too long, and
 * writes the address to the address file.
 */
export async function startControlServer(target: ControlTarget, options: ControlServerOptions): Promise<ControlServer> {
  const socketPath = resolve(options.socketPath);
  const addressFile = resolve(options.addressFile ?? join(dirname(socketPath), 'control.address'));
  await mkdir(dirname(socketPath), { recursive: true, mode: 0o700 });
  await mkdir(dirname(addressFile), { recursive: true });
  const server = createServer((req, res) => void handle(target, options.notBefore, req, res));
  const onUnix = Buffer.byteLength(socketPath) <= MAX_SOCKET_PATH_BYTES;
  let address: string;
  if (onUnix) {
    await removeStaleSocket(socketPath);
    await listen(server, { path: socketPath });
    await chmod(socketPath, 0o600);
    address = `unix:${socketPath}`;
  } else {
    await listen(server, { host: '127.0.0.1', port: 0 });
    const bound = server.address();
    address = `http://127.0.0.1:${typeof bound === 'object' && bound ? bound.port : 0}`;
  }
  const written = `${addressFile}.${process.pid}.tmp`;
  await writeFile(written, address + '\n', { mode: 0o600 });
  await rename(written, addressFile);
  let closing: Promise<void> | undefined;
  return {
    address,
    addressFile,
    close: () =>
      (closing ??= (async () => {
        await new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        });
        await rm(addressFile, { force: true }).catch(() => undefined);
        if (onUnix) await rm(socketPath, { force: true }).catch(() => undefined);
      })()),
  };
}

function listen(server: Server, where: { path: string } | { host: string; port: number }): Promise<void> {
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(where, () => {
      server.off('error', fail);
      done();
    });
  });
}

/** Removes a socket file nobody answers on (an earlier run that was killed); refuses a live one or a non-socket. */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = await lstat(path).catch(() => undefined);
  if (!stat) return;
  if (!stat.isSocket()) throw new LaunchError(`control API: ${path} exists and is not a socket`);
  const live = await new Promise<boolean>((done) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      done(true);
    });
    probe.once('error', () => done(false));
  });
  if (live) throw new LaunchError(`control API: ${path} is in use (another armature up of this graph is running)`);
  await rm(path, { force: true });
}

/** This API's statuses: a scale that the supervisor cannot carry out now is a conflict. */
const STATUS: Partial<Record<ErrorClass, number>> = {
  invalid_argument: 400,
  not_found: 404,
  payload_too_large: 413,
  failed_precondition: 409,
  unavailable: 503,
};

function fail(cls: ErrorClass, reason: string, message: string): ArmatureError {
  return new ArmatureError(cls, reason, message);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown): void {
  const e = asArmatureError(err);
  const status = e.reason === 'method_not_allowed' ? 405 : (STATUS[e.cls] ?? 500);
  const { message, type, code } = openAiErrorBody(e).error;
  if (status === 413) res.setHeader('connection', 'close'); // the rest of the body is not read
  send(res, status, { error: { message, type, code } });
}

async function handle(
  target: ControlTarget,
  notBefore: Promise<unknown> | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  try {
    const path = new URL(req.url ?? '/', 'http://control').pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    const only = (allowed: string): void => {
      if (method !== allowed) {
        res.setHeader('allow', allowed);
        throw fail('invalid_argument', 'method_not_allowed', `${method} ${path}: use ${allowed}`);
      }
    };
    if (path === '/v1/health') {
      only('GET');
      return send(res, 200, { ok: true });
    }
    if (path === '/v1/replicas') {
      only('GET');
      return send(res, 200, replicaStatus(target));
    }
    const scaled = /^\/v1\/replicas\/([^/]+)$/.exec(path);
    if (!scaled) throw fail('not_found', 'not_found', `no such endpoint: ${method} ${path}`);
    only('PUT');
    const kind = checkKind(target, decodeURIComponent(scaled[1]!));
    const replicas = parseReplicas(await readBody(req));
    await notBefore?.catch(() => undefined);
    try {
      await target.scale(kind, replicas);
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\n')[0]!.slice(0, 500) : String(err);
      // The launcher's refusals (a kind with no entry point yet, the supervisor stopping) are the state's, not a failure.
      if (err instanceof LaunchError) throw fail('failed_precondition', 'cannot_scale', why);
      throw fail('internal', 'scale_failed', `scale ${kind} to ${replicas} failed: ${why}`);
    }
    send(res, 200, { kind, ...serviceReplicas(target, kind) } satisfies ScaleResult);
  } catch (err) {
    if (!res.headersSent) sendError(res, err);
    else res.destroy();
  }
}

function checkKind(target: ControlTarget, name: string): ServiceKind {
  if (!(SERVICE_KINDS as readonly string[]).includes(name))
    throw fail(
      'not_found',
      'unknown_kind',
      `unknown service kind ${JSON.stringify(name)}; kinds: ${SERVICE_KINDS.join(', ')}`,
    );
  const kind = name as ServiceKind;
  if (!target.graph.services.some((s) => s.kind === kind))
    throw fail('not_found', 'kind_not_in_graph', `the graph ${target.graph.name} has no ${kind} service`);
  if (!SCALABLE_KINDS.includes(kind))
    throw fail(
      'failed_precondition',
      'not_scalable',
      `${kind} replicas cannot be scaled at run time; scalable kinds: ${SCALABLE_KINDS.join(', ')}`,
    );
  return kind;
}

function parseReplicas(body: string): number {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw fail('invalid_argument', 'bad_json', 'the body is not JSON; send {"replicas": <n>}');
  }
  const replicas = typeof doc === 'object' && doc !== null ? (doc as { replicas?: unknown }).replicas : undefined;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0 || replicas > 256)
    throw fail(
      'invalid_argument',
      'bad_replicas',
      `replicas must be an integer in [0, 256], got ${replicas === undefined ? 'none' : JSON.stringify(replicas)}`,
    );
  return replicas;
}

function readBody(req: IncomingMessage): Promise<string> {
  const tooLarge = (): ArmatureError =>
    fail('payload_too_large', 'body_too_large', `the body is larger than ${CONTROL_MAX_BODY_BYTES} bytes`);
  if (Number(req.headers['content-length'] ?? 0) > CONTROL_MAX_BODY_BYTES) return Promise.reject(tooLarge());
  return new Promise((done, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > CONTROL_MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => done(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}
