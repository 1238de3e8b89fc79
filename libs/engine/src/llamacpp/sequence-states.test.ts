// Sequence states' file directory: named after its process, in memory where the system
// has /dev/shm, removed on close; directories whose owner process is gone are swept.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SequenceStates } from './sequence-states.js';

const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const ours = (): string[] => readdirSync(base).filter((n) => n.startsWith(`armature-llamacpp-${process.pid}-`));

describe('SequenceStates directory', () => {
  it('sweeps the directories of dead processes, keeps its own until closed', () => {
    // A pid that existed and is gone: a child that has exited.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = join(base, `armature-llamacpp-${dead}-test`);
    mkdirSync(join(stale, 'sub'), { recursive: true });
    const before = ours().length;
    const states = new SequenceStates(4);
    expect(existsSync(stale)).toBe(false);
    expect(ours()).toHaveLength(before + 1);
    states.close();
    expect(ours()).toHaveLength(before);
  });
});
