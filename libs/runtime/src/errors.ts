// One error type for the whole system. The component closest to the cause classifies a
// failure once (a closed class plus a stable reason); only the boundaries (HTTP, gRPC)
// render it. `message` is safe for clients; `detail` is for operators' logs only.
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';

/** The closed set of error classes. */
export type ErrorClass =
  | 'invalid_argument'
  | 'not_found'
  | 'payload_too_large'
  | 'unavailable'
  | 'resource_exhausted'
  | 'cancelled'
  | 'deadline_exceeded'
  | 'failed_precondition'
  | 'internal';

export interface ArmatureErrorOptions {
  /** Request parameter at fault (OpenAI's `param`). */
  param?: string;
  /** Operator-only detail, never sent to clients. */
  detail?: string;
  cause?: unknown;
}

export class ArmatureError extends Error {
  override readonly name = 'ArmatureError';
  readonly param: string | undefined;
  readonly detail: string | undefined;

  constructor(
    readonly cls: ErrorClass,
    /** Stable machine-readable reason, snake_case (e.g. `model_not_found`). */
    readonly reason: string,
    message: string,
    options: ArmatureErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.param = options.param;
    this.detail = options.detail;
  }
}

export const isArmatureError = (err: unknown): err is ArmatureError => err instanceof ArmatureError;

/** Wraps anything thrown into an ArmatureError (unknown failures become `internal`). */
export function asArmatureError(err: unknown): ArmatureError {
  if (err instanceof ArmatureError) return err;
  if (isGrpcServiceError(err)) return fromGrpcError(err);
  if (err instanceof Error && err.name === 'AbortError') {
    return new ArmatureError('cancelled', 'cancelled', 'request cancelled', { cause: err });
  }
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return new ArmatureError('internal', 'internal_error', 'internal error', { detail, cause: err });
}

const HTTP_STATUS: Record<ErrorClass, number> = {
  invalid_argument: 400,
  not_found: 404,
  payload_too_large: 413,
  unavailable: 503,
  resource_exhausted: 429,
  cancelled: 499,
  deadline_exceeded: 504,
  failed_precondition: 400,
  internal: 500,
};

/** HTTP status for an error class. */
export const httpStatusOf = (cls: ErrorClass): number => HTTP_STATUS[cls];

const OPENAI_TYPE: Record<ErrorClass, string> = {
  invalid_argument: 'invalid_request_error',
  not_found: 'invalid_request_error',
  payload_too_large: 'invalid_request_error',
  unavailable: 'service_unavailable_error',
  resource_exhausted: 'rate_limit_error',
  cancelled: 'cancelled',
  deadline_exceeded: 'timeout_error',
  failed_precondition: 'invalid_request_error',
  internal: 'internal_error',
};

/** The OpenAI error body for an error: `{error: {message, type, param, code}}`. */
export function openAiErrorBody(err: ArmatureError): {
  error: { message: string; type: string; param: string | null; code: string };
} {
  return {
    error: { message: err.message, type: OPENAI_TYPE[err.cls], param: err.param ?? null, code: err.reason },
  };
}

const GRPC_STATUS: Record<ErrorClass, GrpcStatus> = {
  invalid_argument: GrpcStatus.INVALID_ARGUMENT,
  not_found: GrpcStatus.NOT_FOUND,
  payload_too_large: GrpcStatus.INVALID_ARGUMENT,
  unavailable: GrpcStatus.UNAVAILABLE,
  resource_exhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  cancelled: GrpcStatus.CANCELLED,
  deadline_exceeded: GrpcStatus.DEADLINE_EXCEEDED,
  failed_precondition: GrpcStatus.FAILED_PRECONDITION,
  internal: GrpcStatus.INTERNAL,
};

const REASON_KEY = 'armature-reason';
const CLASS_KEY = 'armature-class';
const PARAM_KEY = 'armature-param';

/** Renders an error as a gRPC status (class and reason travel in trailing metadata). */
export function toGrpcError(err: unknown): Partial<ServiceError> {
  const e = asArmatureError(err);
  const metadata = new Metadata();
  metadata.set(CLASS_KEY, e.cls);
  metadata.set(REASON_KEY, e.reason);
  if (e.param) metadata.set(PARAM_KEY, e.param);
  return { code: GRPC_STATUS[e.cls], details: e.message, metadata };
}

export function isGrpcServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as ServiceError).code === 'number' && 'metadata' in err;
}

const CLASS_OF_GRPC: Partial<Record<GrpcStatus, ErrorClass>> = {
  [GrpcStatus.INVALID_ARGUMENT]: 'invalid_argument',
  [GrpcStatus.NOT_FOUND]: 'not_found',
  [GrpcStatus.UNAVAILABLE]: 'unavailable',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'resource_exhausted',
  [GrpcStatus.CANCELLED]: 'cancelled',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'deadline_exceeded',
  [GrpcStatus.FAILED_PRECONDITION]: 'failed_precondition',
};

/** Reads an error a peer rendered with toGrpcError (or a transport failure) back. */
export function fromGrpcError(err: ServiceError): ArmatureError {
  const cls = (err.metadata?.get(CLASS_KEY)[0] as ErrorClass | undefined) ?? CLASS_OF_GRPC[err.code] ?? 'internal';
  const reason =
    (err.metadata?.get(REASON_KEY)[0] as string | undefined) ??
    `grpc_${GrpcStatus[err.code]?.toLowerCase() ?? err.code}`;
  const param = err.metadata?.get(PARAM_KEY)[0] as string | undefined;
  return new ArmatureError(cls, reason, err.details || err.message, { param, detail: err.message, cause: err });
}
