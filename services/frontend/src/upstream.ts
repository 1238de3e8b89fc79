// The frontend's connections upstream: the models and routers it learns from discovery,
// and one gRPC client per worker address. It implements the pipeline's ports over gRPC
// (RouterPort, WorkerPort, ModelCatalog) and decides nothing about requests.
import { loadTokenizer } from '@armature/tokenizer';
import {
  RouterClient,
  WorkerClient,
  type GenerateRequest,
  type GenerateResponse,
  type PrefillResponse,
  type RouteRequest,
  type RouteResponse,
} from '@armature/proto';
import {
  ArmatureError,
  CLIENT_CHANNEL_OPTIONS,
  asArmatureError,
  createLogger,
  insecureCredentials,
  requestMetadata,
  type Discovery,
  type InstanceRecord,
  type Watch,
} from '@armature/runtime';
import type { ModelCatalog, RouterPort, ServedModel, WorkerPort, WorkerStream } from './pipeline/ports.js';

const log = createLogger('frontend/upstream');

/**
 * Worker channels ping every `keepaliveMs` (default 2 s) and give up as long after an
 * unanswered ping: a worker that is stopped (SIGSTOP) or whose event loop is stuck fails
 * its streams within ~2 × keepaliveMs, and its requests move on, instead of waiting for
 * its discovery lease.
 */
export function workerChannelOptions(keepaliveMs = 2_000): typeof CLIENT_CHANNEL_OPTIONS {
  return { ...CLIENT_CHANNEL_OPTIONS, 'grpc.keepalive_time_ms': keepaliveMs, 'grpc.keepalive_timeout_ms': keepaliveMs };
}

/** Router answers that mean "ask another router": it is gone or leaving. */
const ROUTER_GONE = new Set(['grpc_unavailable', 'router_shutting_down', 'no_router']);

export interface UpstreamOptions {
  /**
   * How long a Route waits for a router when none answers (all gone, or one restarting),
   * ms (default 10 000); within it, a router that comes back takes the request.
   */
  routerWaitMs?: number;
  /** Keepalive ping interval (and timeout) of worker channels, ms (default 2000). */
  workerKeepaliveMs?: number;
}

export class Upstream implements RouterPort, WorkerPort, ModelCatalog {
  private readonly workers = new Map<string, InstanceRecord>();
  private readonly routers = new Map<string, { record: InstanceRecord; client: RouterClient }>();
  private readonly workerClients = new Map<string, WorkerClient>();
  private readonly firstSeen = new Map<string, number>();
  private readonly modelListeners: Array<(model: string) => void> = [];
  private readonly watches: Watch[] = [];
  private nextRouter = 0;
  /** The router that placed each in-flight request: it keeps that request's load. */
  private readonly routedBy = new Map<string, RouterClient>();

  private readonly routerWaitMs: number;
  private readonly workerChannel: typeof CLIENT_CHANNEL_OPTIONS;

  constructor(
    private readonly discovery: Discovery,
    options: UpstreamOptions = {},
  ) {
    this.routerWaitMs = options.routerWaitMs ?? 10_000;
    this.workerChannel = workerChannelOptions(options.workerKeepaliveMs);
  }

  start(): void {
    this.watches.push(
      this.discovery.watch({ role: 'decode' }, (e) => {
        if (e.type === 'removed') this.workers.delete(e.record.instanceId);
        else if (e.record.model && e.record.card) {
          this.workers.set(e.record.instanceId, e.record);
          // Load the model's tokenizer now, not on its first request.
          loadTokenizer(e.record.card.tokenizer).catch((err: unknown) =>
            log.warn('cannot load the tokenizer a worker names', { tokenizer: e.record.card?.tokenizer, err }),
          );
          if (!this.firstSeen.has(e.record.model)) {
            this.firstSeen.set(e.record.model, Math.floor(Date.now() / 1000));
            for (const l of this.modelListeners) l(e.record.model);
          }
        }
      }),
      this.discovery.watch({ role: 'router' }, (e) => {
        const old = this.routers.get(e.record.instanceId);
        if (old && (e.type === 'removed' || old.record.grpcAddress !== e.record.grpcAddress)) {
          old.client.close();
          this.routers.delete(e.record.instanceId);
        }
        if (e.type !== 'removed' && e.record.grpcAddress && !this.routers.has(e.record.instanceId)) {
          const client = new RouterClient(e.record.grpcAddress, insecureCredentials(), CLIENT_CHANNEL_OPTIONS);
          this.routers.set(e.record.instanceId, { record: e.record, client });
          log.info('router found', { router: e.record.instanceId, address: e.record.grpcAddress });
        }
      }),
    );
  }

  /** Tells `listener` of every model a worker serves, once each: those seen so far at once, the others as they come. */
  onModel(listener: (model: string) => void): void {
    this.modelListeners.push(listener);
    for (const model of this.firstSeen.keys()) listener(model);
  }

  /** Models with at least one live worker. */
  models(): Map<string, ServedModel> {
    const out = new Map<string, ServedModel>();
    for (const w of this.workers.values()) {
      const model = w.model!;
      let m = out.get(model);
      if (!m) {
        m = { card: w.card!, workers: new Set(), created: this.firstSeen.get(model) ?? 0 };
        out.set(model, m);
      }
      m.workers.add(w.instanceId);
    }
    return out;
  }

  model(name: string): ServedModel | undefined {
    return this.models().get(name);
  }

  get routerCount(): number {
    return this.routers.size;
  }

  /** A gRPC client for a worker address (cached). */
  private worker(address: string): WorkerClient {
    let c = this.workerClients.get(address);
    if (!c) {
      c = new WorkerClient(address, insecureCredentials(), this.workerChannel);
      this.workerClients.set(address, c);
    }
    return c;
  }

  /** Drops a cached worker client (its worker failed). */
  forgetWorker(address: string): void {
    this.workerClients.get(address)?.close();
    this.workerClients.delete(address);
  }

  private pickRouters(): RouterClient[] {
    const all = [...this.routers.values()].map((r) => r.client);
    const start = all.length === 0 ? 0 : this.nextRouter++ % all.length;
    return [...all.slice(start), ...all.slice(0, start)];
  }

  /**
   * Asks a router for a worker, failing over to another router when one is gone or
   * leaving; while none answers it retries (backing off to 500 ms) for up to routerWaitMs.
   */
  async route(req: RouteRequest, signal: AbortSignal): Promise<RouteResponse> {
    const giveUpAt = Date.now() + this.routerWaitMs;
    let lastErr: ArmatureError | undefined;
    for (let pause = 50; ; pause = Math.min(pause * 2, 500)) {
      for (const client of this.pickRouters()) {
        try {
          const res = await unaryCall<RouteResponse>((cb) => client.route(req, requestMetadata(), cb), signal);
          this.routedBy.set(req.requestId, client);
          return res;
        } catch (err) {
          lastErr = asArmatureError(err);
          if (!ROUTER_GONE.has(lastErr.reason) || signal.aborted) throw lastErr; // a router's own answer
        }
      }
      if (Date.now() + pause > giveUpAt) break;
      await sleep(pause, signal);
    }
    const none = this.routers.size === 0;
    throw new ArmatureError('unavailable', 'no_router', none ? 'no router is available' : 'no router answered', {
      detail: lastErr?.detail,
      cause: lastErr,
    });
  }

  /** Streams a request from a worker; aborting `signal` cancels the call. */
  generate(address: string, req: GenerateRequest, signal: AbortSignal): WorkerStream {
    const call = this.worker(address).generate(req, requestMetadata());
    const accepted = new Promise<void>((resolve) => {
      call.once('metadata', () => resolve());
      call.once('status', () => resolve());
    });
    const onAbort = (): void => call.cancel();
    // A client gone between Route and here: an already-aborted signal fires no event.
    if (signal.aborted) call.cancel();
    else signal.addEventListener('abort', onAbort, { once: true });
    async function* messages(): AsyncGenerator<GenerateResponse> {
      try {
        for await (const msg of call) yield msg as GenerateResponse;
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    }
    return Object.assign(messages(), { cancel: (): void => call.cancel(), accepted });
  }

  /** Runs a prompt on a prefill worker: its first token and where its KV blocks wait. */
  prefill(address: string, req: GenerateRequest, signal: AbortSignal, deadline: number): Promise<PrefillResponse> {
    const client = this.worker(address);
    return unaryCall<PrefillResponse>((cb) => client.prefill(req, requestMetadata(), { deadline }, cb), signal);
  }

  /** Unpins a prefill's blocks that no decode worker will pull (best effort). */
  releaseKv(address: string, pinId: string): void {
    this.worker(address).releaseKv({ pinId }, (err) => {
      if (err) log.debug('releaseKv failed', { address, pinId, err: err.message });
    });
  }

  // Best-effort notifications to the router that placed the request: a failure is logged,
  // never surfaced to the client.

  markPrefillComplete(requestId: string): void {
    this.routedBy.get(requestId)?.markPrefillComplete({ requestId }, (err) => {
      if (err) log.debug('markPrefillComplete failed', { requestId, err: err.message });
    });
  }

  markPrefillLocal(requestId: string): void {
    this.routedBy.get(requestId)?.markPrefillLocal({ requestId }, (err) => {
      if (err) log.debug('markPrefillLocal failed', { requestId, err: err.message });
    });
  }

  free(requestId: string): void {
    const client = this.routedBy.get(requestId);
    this.routedBy.delete(requestId);
    client?.free({ requestId }, (err) => {
      if (err) log.debug('free failed', { requestId, err: err.message });
    });
  }

  close(): void {
    for (const w of this.watches) w.close();
    for (const r of this.routers.values()) r.client.close();
    for (const c of this.workerClients.values()) c.close();
  }
}

/** Resolves after `ms`, or rejects with cancelled when the signal aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', aborted);
    };
    const aborted = (): void => {
      done();
      reject(new ArmatureError('cancelled', 'cancelled', 'request cancelled'));
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    if (signal.aborted) aborted();
    else signal.addEventListener('abort', aborted, { once: true });
  });
}

function unaryCall<Res>(
  start: (cb: (err: Error | null, res: Res) => void) => { cancel(): void },
  signal: AbortSignal,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const call = start((err, res) => {
      signal.removeEventListener('abort', onAbort);
      if (err) reject(asArmatureError(err));
      else resolve(res);
    });
    const onAbort = (): void => call.cancel();
    if (signal.aborted) call.cancel();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}

export type { RouteRequest };
