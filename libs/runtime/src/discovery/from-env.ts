// Builds the discovery backend the environment names (ARMATURE_DISCOVERY_*).
import { resolve } from 'node:path';
import { envEnum, envInt, envString } from '../config.js';
import { FileDiscovery } from './file.js';
import { MemoryDiscovery } from './memory.js';
import type { Discovery } from './types.js';

/** The discovery backend named by ARMATURE_DISCOVERY_BACKEND (default file). */
export function discoveryFromEnv(env: Record<string, string | undefined> = process.env): Discovery {
  const backend = envEnum('ARMATURE_DISCOVERY_BACKEND', ['file', 'memory'] as const, 'file', env);
  if (backend === 'memory') return new MemoryDiscovery();
  return new FileDiscovery({ dir: resolve(envString('ARMATURE_DISCOVERY_DIR', '.armature/discovery', env)) });
}

/** Lease length from ARMATURE_DISCOVERY_LEASE_MS (default 10 s). */
export function leaseMsFromEnv(env: Record<string, string | undefined> = process.env): number {
  return envInt('ARMATURE_DISCOVERY_LEASE_MS', 10_000, { min: 100, max: 3_600_000 }, env);
}
