// A prefill worker: runs prompts (prefill only), keeps their KV blocks pinned until a
// decode worker has pulled them or a timeout passes, and answers transfer descriptors.
// See libs/worker.
import { createLogger } from '@armature/runtime';
import { runWorker } from '@armature/worker';

runWorker('prefill').catch((err: unknown) => {
  createLogger('prefill').error('worker failed to start', { err });
  process.exit(1);
});
