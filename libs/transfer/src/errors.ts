// Typed transfer failures. The transfer library classifies a failure once, where it is
// detected (a socket closing, a timer firing, a checksum disagreeing), as one of five
// kinds; each kind maps to an ArmatureError class and the stable reason `transfer_<kind>`.
import { ArmatureError, type ArmatureErrorOptions, type ErrorClass } from '@armature/runtime';

/** Why a transfer failed. */
export type TransferErrorKind = 'peer_unreachable' | 'timeout' | 'checksum_mismatch' | 'bad_request' | 'closed';

/** Every kind, in a stable order (for counters). */
export const TRANSFER_ERROR_KINDS: readonly TransferErrorKind[] = [
  'peer_unreachable',
  'timeout',
  'checksum_mismatch',
  'bad_request',
  'closed',
];

const CLASS_OF: Record<TransferErrorKind, ErrorClass> = {
  peer_unreachable: 'unavailable',
  timeout: 'deadline_exceeded',
  checksum_mismatch: 'internal',
  bad_request: 'invalid_argument',
  closed: 'unavailable',
};

/** A failed transfer: `kind` says why; `cls` and `reason` (`transfer_<kind>`) follow from it. */
export class TransferError extends ArmatureError {
  constructor(
    readonly kind: TransferErrorKind,
    message: string,
    options: ArmatureErrorOptions = {},
  ) {
    super(CLASS_OF[kind], `transfer_${kind}`, message, options);
  }
}

export const isTransferError = (err: unknown): err is TransferError => err instanceof TransferError;
