// Child processes for integration tests: spawn a real service, collect its output, and
// make sure it is gone when the test ends.
import { spawnReplica, type ReplicaProcess } from '@armature/runtime';

/** A running service process (the launcher's replica handle). */
export type ServiceProcess = ReplicaProcess;

/** Spawns `node <script> ...args` with extra environment, keeping all its output. */
export function spawnNode(script: string, args: string[], env: Record<string, string>, cwd?: string): ServiceProcess {
  return spawnReplica({ entry: script, args, env, cwd, keepAllOutput: true });
}
