// Agent metadata through discovery: what an agent publishes parses back to the same thing,
// and a malformed record from a peer is refused field by field.
import { describe, expect, it } from 'vitest';
import { TransferAgent } from './agent.js';
import { encodeAgentMetadata, parseAgentMetadata } from './metadata.js';

describe('agent metadata', () => {
  it('round-trips what an agent publishes', async () => {
    const agent = await TransferAgent.create({ agentId: `meta-${process.pid}`, backends: ['tcp'], native: null });
    try {
      agent.registerRegion(4, 16, 4096);
      const meta = agent.metadata();
      expect(meta).toMatchObject({
        agentId: `meta-${process.pid}`,
        host: '127.0.0.1',
        regions: [{ id: 4, blocks: 16, blockBytes: 4096 }],
        tcp: { address: expect.stringMatching(/^127\.0\.0\.1:\d+$/), checksums: ['xxh3-64'] },
      });
      expect(meta.shm).toBeUndefined();
      expect(parseAgentMetadata(encodeAgentMetadata(meta))).toEqual(meta);
    } finally {
      await agent.close();
    }
  });

  it('refuses malformed records with bad_request naming the field', () => {
    const good = { agentId: 'a', host: 'h', regions: [{ id: 1, blocks: 2, blockBytes: 1024 }] };
    const cases: [unknown, RegExp][] = [
      ['[]', /object/],
      [{ ...good, agentId: '' }, /agentId/],
      [{ ...good, regions: {} }, /regions/],
      [{ ...good, regions: [{ id: -1, blocks: 2, blockBytes: 1024 }] }, /regions\[0\]\.id/],
      [{ ...good, regions: [{ id: 1, blocks: 0, blockBytes: 1024 }] }, /blocks/],
      [{ ...good, regions: [{ id: 1, blocks: 2, blockBytes: 1e12 }] }, /blockBytes/],
      [{ ...good, regions: [{ id: 1, blocks: 2, blockBytes: 1024, shmName: 'a/b' }] }, /shmName/],
      [{ ...good, tcp: { address: 5 } }, /tcp\.address/],
      [{ ...good, tcp: { address: 'h:1', checksums: 'xxh3-64' } }, /tcp\.checksums/],
      [{ ...good, shm: {} }, /shm\.hostKey/],
    ];
    for (const [value, message] of cases) {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      expect(() => parseAgentMetadata(text)).toThrow(message);
    }
    expect(() => parseAgentMetadata('{')).toThrow(/not JSON/);
  });

  it('drops checksum algorithms it does not know (a newer peer)', () => {
    const meta = parseAgentMetadata(
      JSON.stringify({
        agentId: 'a',
        host: 'h',
        regions: [],
        tcp: { address: 'h:1', checksums: ['blake9', 'xxh3-64'] },
      }),
    );
    expect(meta.tcp?.checksums).toEqual(['xxh3-64']);
  });
});
