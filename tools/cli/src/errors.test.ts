// How the CLI sorts failures: the user's mistakes and the host's refusals are one line, a
// bug keeps its stack.
import { describe, expect, it } from 'vitest';
import { GraphError, LaunchError } from '@armature/deploy';
import { ArmatureError } from '@armature/runtime';
import { classify, UsageError } from './errors.js';

const errno = (code: string, extra: Record<string, unknown> = {}): Error =>
  Object.assign(new Error(`${code}: something`), { code, ...extra });

describe('classify', () => {
  it('makes the user’s mistakes usage errors, in plain words', () => {
    expect(classify(new UsageError('--rate must be a number'))).toEqual({
      kind: 'usage',
      message: '--rate must be a number',
    });
    expect(classify(new GraphError('services.decode.replicas must be ...'))).toMatchObject({ kind: 'usage' });
    expect(classify(new ArmatureError('invalid_argument', 'bad_workload_spec', 'bad workload spec'))).toEqual({
      kind: 'usage',
      message: 'bad workload spec',
    });
    expect(classify(errno('ENOENT', { path: '/no/such.yaml' }))).toEqual({
      kind: 'usage',
      message: 'no such file: /no/such.yaml',
    });
    expect(classify(new Error('--mode must be trace, rate or concurrency'))).toMatchObject({ kind: 'usage' });
    expect(classify(new SyntaxError('Unexpected token } in JSON at position 3'))).toMatchObject({
      kind: 'usage',
      message: 'not valid JSON: Unexpected token } in JSON at position 3',
    });
    const unknown = Object.assign(new TypeError("Unknown option '--bogus'. To specify a positional ..."), {
      code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION',
    });
    expect(classify(unknown)).toEqual({ kind: 'usage', message: 'unknown option --bogus' });
  });

  it('makes refusals of the host or the network one line, and leaves bugs their stack', () => {
    expect(classify(new LaunchError('there is no planner service to run yet'))).toMatchObject({ kind: 'refused' });
    const refused = new TypeError('fetch failed', { cause: errno('ECONNREFUSED') });
    expect(classify(refused)).toEqual({ kind: 'refused', message: 'fetch failed: ECONNREFUSED: something' });
    const bug = new TypeError("Cannot read properties of undefined (reading 'replace')");
    expect(classify(bug)).toEqual({ kind: 'unexpected', message: bug.stack });
    expect(classify(new ArmatureError('internal', 'internal_error', 'internal error'))).toMatchObject({
      kind: 'unexpected',
    });
    expect(classify(new Error('something else broke'))).toMatchObject({ kind: 'unexpected' });
  });
});
