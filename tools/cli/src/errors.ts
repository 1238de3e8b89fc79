// What the command line tells apart when a command fails: the user's mistake (an unknown
// option, a bad value, a missing or malformed file, a wrong graph), worth one line and exit 2; a refusal
// of this host or network (a launch it cannot run, a server that does not answer), one line
// and exit 1; and everything else, a bug, with its stack and exit 1.
import { GraphError, LaunchError } from '@armature/deploy';
import { isArmatureError, type ErrorClass } from '@armature/runtime';

/** A command line the command cannot run; the message says what is wrong with it. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type Failure =
  { kind: 'usage'; message: string } | { kind: 'refused'; message: string } | { kind: 'unexpected'; message: string };

/** Classes the component at fault gives a bad input of the user's (a dataset spec, a tokenizer id, a config value). */
const USER_CLASSES: ReadonlySet<ErrorClass> = new Set(['invalid_argument', 'not_found', 'failed_precondition']);

const FILE_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory, not a file',
  EACCES: 'permission denied',
};

const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH']);

type NodeError = Error & { code?: string; path?: string; cause?: unknown };

/** node:util parseArgs' errors, in this CLI's words. */
function parseArgsMessage(err: NodeError): string {
  const quoted = /'([^']+)'/.exec(err.message)?.[1] ?? '';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${quoted}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return quoted ? `${quoted.split(' ')[0]} needs a value` : err.message;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${quoted}`;
    default:
      return err.message;
  }
}

/** Sorts a failure into usage, refused or unexpected. */
export function classify(err: unknown): Failure {
  if (!(err instanceof Error)) return { kind: 'unexpected', message: String(err) };
  const e = err as NodeError;
  if (err instanceof UsageError || err instanceof GraphError) return { kind: 'usage', message: err.message };
  if (isArmatureError(err) && USER_CLASSES.has(err.cls)) return { kind: 'usage', message: err.message };
  if (e.code?.startsWith('ERR_PARSE_ARGS_')) return { kind: 'usage', message: parseArgsMessage(e) };
  if (e.code && FILE_ERRORS[e.code] && e.path) return { kind: 'usage', message: `${FILE_ERRORS[e.code]}: ${e.path}` };
  if (err instanceof SyntaxError && /\bJSON\b/.test(err.message))
    return { kind: 'usage', message: `not valid JSON: ${err.message}` };
  // @armature/bench reports a bad argument as a plain Error that starts with the option's name.
  if (err.constructor === Error && /^--[a-z]/.test(err.message)) return { kind: 'usage', message: err.message };
  if (err instanceof LaunchError || (isArmatureError(err) && err.cls !== 'internal'))
    return { kind: 'refused', message: err.message };
  const cause = e.cause as NodeError | undefined;
  if (cause?.code && NETWORK_ERRORS.has(cause.code))
    return { kind: 'refused', message: `${err.message}: ${cause.message}` };
  return { kind: 'unexpected', message: err.stack ?? err.message };
}
