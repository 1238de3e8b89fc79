// The offline simulator must agree with the live cluster: the same Mooncake slice, the
// same policy and the same mocker timing, replayed through real processes and in virtual
// time, give mean TTFTs within 10% of each other.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeResults, replayMockerDefaults, runLoad, simulate } from '@armature/bench';
import { findTrace, loadWorkload, spreadBursts } from '@armature/bench/datasets';
import { loadTokenizer } from '@armature/tokenizer';
import { MODEL, startCluster, type Cluster } from './cluster.js';

const TRACE = findTrace('mooncake_conversation.jsonl').path;
const SLICE = 40;
// Real time and real engine speed: the serving path's few milliseconds then stay small
// against prefill times of hundreds of milliseconds.
const TIME_SCALE = 1;
const SPEEDUP = 1;
const WORKERS = 2;
const mocker = { ...replayMockerDefaults(), speedup: SPEEDUP };

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({
    workers: WORKERS,
    policy: 'round-robin',
    engineArgs: mocker,
    maxBodyBytes: 16 << 20,
    // Timing only: no KV bytes to write (no prefill workers would read them), so a busy
    // machine does not slow the live side for work the simulator does not model.
    extraEnv: { ARMATURE_TRANSFER: 'off' },
  });
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('offline replay vs live replay', () => {
  it('agrees within 10% on mean TTFT for a Mooncake slice', async () => {
    const tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
    const loaded = await loadWorkload(`mooncake:${TRACE}`, { tokenizer, limit: SLICE });
    // The trace's 3 s timestamps put a dozen requests on one instant; see spread.ts.
    const workload = { ...loaded, requests: spreadBursts(loaded.requests) };
    expect(workload.requests).toHaveLength(SLICE);

    const live = computeResults(
      await runLoad(workload.requests, {
        baseUrl: cluster.url,
        model: MODEL,
        schedule: { mode: 'trace', timeScale: TIME_SCALE },
        maxDurationMs: 60_000,
        requestTimeoutMs: 60_000,
        sendTokenIds: true,
      }),
      { label: 'live', mode: 'live-trace' },
    );
    const offline = computeResults(
      simulate(
        workload.requests.map((r) => ({
          id: r.id,
          arrivalMs: r.arrivalMs! * TIME_SCALE,
          promptTokenIds: r.promptTokenIds,
          outputTokens: r.outputTokens,
        })),
        { workers: WORKERS, policy: 'round-robin', mocker },
      ).records,
      { label: 'offline', mode: 'replay' },
    );
    expect(live.errors_by_type).toEqual({});
    expect(offline.failed).toBe(0);
    expect(live.completed).toBe(SLICE);
    expect(offline.output_tokens.mean).toBeCloseTo(live.output_tokens.mean, 6);
    const ratio = live.ttft_ms.mean / offline.ttft_ms.mean;
    console.log(
      `mean TTFT live ${live.ttft_ms.mean.toFixed(1)} ms, offline ${offline.ttft_ms.mean.toFixed(1)} ms, ratio ${ratio.toFixed(3)}`,
    );
    expect(ratio).toBeGreaterThan(0.9);
    expect(ratio).toBeLessThan(1.1);
  }, 90_000);
});
