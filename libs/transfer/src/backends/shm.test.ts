// The shared-memory backend against the transfer conformance suite. It needs the native
// addon (native/transfer); without it the suite is registered as skipped, with the reason
// in its name, unless ARMATURE_REQUIRE_NATIVE=1 makes a missing addon a failure.
import { describe, it } from 'vitest';
import { loadNative, nativeStatus } from '../native.js';
import { transferConformance } from '../testing/conformance.js';

const native = loadNative();
if (!native && process.env.ARMATURE_REQUIRE_NATIVE === '1') {
  describe('transfer conformance: shm', () => {
    it('needs the native addon (ARMATURE_REQUIRE_NATIVE=1)', () => {
      throw new Error(`the native transfer addon is not loaded: ${nativeStatus().reason}`);
    });
  });
} else {
  transferConformance('shm', {
    backend: 'shm',
    ...(native ? {} : { unavailable: `native addon not loaded: ${nativeStatus().reason}` }),
  });
}
