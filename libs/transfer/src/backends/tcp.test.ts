// The TCP backend against the transfer conformance suite: with the native addon's checksum
// when it is built, and in pure TypeScript (the fallback every agent can run).
import { transferConformance } from '../testing/conformance.js';

transferConformance('tcp', { backend: 'tcp' });
transferConformance('tcp (pure TypeScript)', { backend: 'tcp', pureTypeScript: true });
