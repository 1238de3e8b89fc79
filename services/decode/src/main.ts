// A decode worker: serves requests end to end (aggregated), or decodes requests a prefill
// worker started, pulling their KV blocks first (disaggregated). See libs/worker.
import { createLogger } from '@armature/runtime';
import { runWorker } from '@armature/worker';

runWorker('decode').catch((err: unknown) => {
  createLogger('decode').error('worker failed to start', { err });
  process.exit(1);
});
