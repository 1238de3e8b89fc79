// Reading a request body, and the answers that come before any handler: the content type
// must be application/json in UTF-8 (415), the encoding identity (415), the body within its
// size (413) and its deadline (408), valid UTF-8 (400) and JSON (400); Node's own parser
// refusals get OpenAI error JSON on the socket. What the body means is not its business.
import type { Duplex } from 'node:stream';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { ArmatureError, openAiErrorBody } from '@armature/runtime';

/** An answer whose status (and headers) its error class does not say: 405, 408, 415, a 503 with Retry-After. */
export class HttpError extends ArmatureError {
  constructor(
    readonly status: number,
    cls: ArmatureError['cls'],
    reason: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(cls, reason, message);
  }
}

/** A client-sent header, shortened so an error never echoes a huge one back. */
const shown = (value: string): string => JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);

/** application/json, with charset utf-8 if a charset is given; anything else is a 415. */
function checkContentType(req: IncomingMessage): void {
  const header = req.headers['content-type'];
  const [mediaType, ...params] = (header ?? '').split(';').map((p) => p.trim().toLowerCase());
  const refuse = (message: string): HttpError =>
    new HttpError(415, 'invalid_argument', 'unsupported_media_type', message);
  if (mediaType !== 'application/json') {
    throw refuse(
      `the request body must be application/json; got ${header === undefined ? 'no content-type' : shown(header)}`,
    );
  }
  for (const param of params) {
    const [name, value = ''] = param.split('=', 2).map((p) => p.trim());
    if (name === 'charset' && !['utf-8', 'utf8'].includes(value.replace(/^"(.*)"$/, '$1'))) {
      throw refuse(`the request body must be UTF-8; got charset ${shown(value)}`);
    }
  }
}

/** Only identity: a compressed body would need its own size limit after inflating, which is not built. */
function checkContentEncoding(req: IncomingMessage): void {
  const header = req.headers['content-encoding'];
  const coding = header?.trim().toLowerCase();
  if (coding === undefined || coding === '' || coding === 'identity') return;
  throw new HttpError(
    415,
    'invalid_argument',
    'unsupported_content_encoding',
    `content-encoding ${shown(header!)} is not supported; send the body uncompressed`,
    { 'accept-encoding': 'identity' },
  );
}

/** The body's bytes, within `limit` and `timeoutMs`; the client gone before its end reads as a disconnect. */
function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: ArmatureError | undefined): void => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onGone).off('close', onGone);
      if (!err) return resolve(Buffer.concat(chunks));
      req.resume(); // discard the rest, so the connection can answer
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) finish(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(undefined);
    const onGone = (): void =>
      finish(new ArmatureError('cancelled', 'client_disconnected', 'the client went away before its body ended'));
    const timer = setTimeout(
      () =>
        finish(
          new HttpError(
            408,
            'deadline_exceeded',
            'body_timeout',
            `the request body did not arrive within ${timeoutMs} ms`,
            { connection: 'close' }, // what is still coming is not worth waiting for
          ),
        ),
      timeoutMs,
    );
    req.on('data', onData).on('end', onEnd).on('error', onGone).on('close', onGone);
  });
}

const tooLarge = (limit: number): ArmatureError =>
  new ArmatureError('payload_too_large', 'request_too_large', `the request body exceeds the limit of ${limit} bytes`);

const utf8 = new TextDecoder('utf-8', { fatal: true });

export async function readJsonBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<unknown> {
  checkContentType(req);
  checkContentEncoding(req);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume(); // discard, so the connection can answer
    throw tooLarge(limit);
  }
  const bytes = await readBody(req, limit, timeoutMs);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new ArmatureError('invalid_argument', 'invalid_utf8', 'the request body is not valid UTF-8');
  }
  if (text.trim() === '')
    throw new ArmatureError('invalid_argument', 'invalid_json', 'the request body is empty; expected JSON');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ArmatureError(
      'invalid_argument',
      'invalid_json',
      `the request body is not valid JSON: ${(err as Error).message}`,
    );
  }
}

/** Node's parser errors mapped as Node maps them itself, plus its own request timeout. */
function clientErrorOf(code: string | undefined): [number, string, string] | undefined {
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'headers_too_large', 'the request headers are too large'];
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return [413, 'request_too_large', 'the chunk extensions are too large'];
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'request_timeout', 'the request did not arrive in time'];
  if (code?.startsWith('HPE_')) return [400, 'malformed_request', 'the request is not valid HTTP/1.1'];
  return undefined;
}

/**
 * Answers what Node's parser refused before any handler ran (there is no response object
 * yet, so the answer is written to the socket). A socket error, or a socket already in the
 * middle of an answer, is only closed.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const answer = clientErrorOf(err.code);
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!answer || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, reason, message] = answer;
  const body = JSON.stringify(openAiErrorBody(new ArmatureError('invalid_argument', reason, message)));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
