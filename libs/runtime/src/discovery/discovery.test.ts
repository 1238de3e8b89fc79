import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { discoveryConformance } from '@armature/testing';
import { FileDiscovery } from './file.js';
import { MemoryDiscovery, MemoryDiscoveryHub } from './memory.js';

discoveryConformance('memory', async () => {
  const hub = new MemoryDiscoveryHub();
  return { client: () => new MemoryDiscovery(hub) };
});

discoveryConformance('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'armature-discovery-'));
  return {
    client: () => new FileDiscovery({ dir, pollMs: 50 }),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
});
