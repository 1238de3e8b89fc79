// Which machine (and IPC namespace) this process runs on. Two agents use shared memory
// only when their host keys are equal: same hostname, same boot (so a rebooted or cloned
// machine does not match a stale record) and same IPC namespace (containers on one host
// that do not share /dev/shm must not try to open each other's objects).
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

let cached: string | undefined;

/** `hostname/boot-id/ipc-namespace`, computed once; parts that cannot be read are left empty. */
export function localHostKey(): string {
  cached ??= [
    hostname(),
    readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()),
    readOr(() => readlinkSync('/proc/self/ns/ipc')),
  ].join('/');
  return cached;
}

function readOr(read: () => string): string {
  try {
    return read();
  } catch {
    return '';
  }
}
