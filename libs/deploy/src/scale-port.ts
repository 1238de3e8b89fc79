// The scale port: how a running deployment's replica counts are changed. The local
// supervisor implements it; a Kubernetes connector will too (patching Deployments). The
// planner is its first user: it decides counts and applies them through this interface.
import type { ServiceKind } from './service-kinds.js';

export interface ScalePort {
  /**
   * Sets the replica count of `kind`: new replicas start with the next numbers (decode-2, ...)
   * and the call resolves once they are ready; surplus replicas, highest numbers first, get
   * SIGTERM and the grace period before SIGKILL, and the call resolves once they exited.
   */
  scale(kind: ServiceKind, replicas: number): Promise<void>;
  /** The replica count of `kind` now (what the last scale asked for, or the graph's). */
  replicas(kind: ServiceKind): number;
}
