// Structural check of msgpack bytes before they reach @msgpack/msgpack's decoder, which
// preallocates arrays from their claimed length: a few bytes of garbage claiming 2^32-element
// arrays would otherwise cost gigabytes. Checks framing only, not what the values mean.

/** Header layout of a msgpack type byte: fixed payload, a length field, or child values. */
interface Layout {
  /** Bytes of the length field after the type byte (0, 1, 2 or 4). */
  lengthBytes: number;
  /** Extra header bytes after the length field (the ext type byte). */
  extraHeader: number;
  /** Payload bytes when there is no length field. */
  fixedPayload: number;
  /** What the length counts: payload bytes, array items or map entries. */
  counts: 'bytes' | 'items' | 'entries';
}

const layout = (
  lengthBytes: number,
  counts: Layout['counts'] = 'bytes',
  fixedPayload = 0,
  extraHeader = 0,
): Layout => ({ lengthBytes, extraHeader, fixedPayload, counts });

/** Layouts of the type bytes 0xc0..0xdf; null marks the one invalid byte, 0xc1. */
const LONG_FORMS: (Layout | null)[] = [
  layout(0), // 0xc0 nil
  null, // 0xc1 never used
  layout(0), // 0xc2 false
  layout(0), // 0xc3 true
  layout(1), // 0xc4 bin8
  layout(2), // 0xc5 bin16
  layout(4), // 0xc6 bin32
  layout(1, 'bytes', 0, 1), // 0xc7 ext8
  layout(2, 'bytes', 0, 1), // 0xc8 ext16
  layout(4, 'bytes', 0, 1), // 0xc9 ext32
  layout(0, 'bytes', 4), // 0xca float32
  layout(0, 'bytes', 8), // 0xcb float64
  layout(0, 'bytes', 1), // 0xcc uint8
  layout(0, 'bytes', 2), // 0xcd uint16
  layout(0, 'bytes', 4), // 0xce uint32
  layout(0, 'bytes', 8), // 0xcf uint64
  layout(0, 'bytes', 1), // 0xd0 int8
  layout(0, 'bytes', 2), // 0xd1 int16
  layout(0, 'bytes', 4), // 0xd2 int32
  layout(0, 'bytes', 8), // 0xd3 int64
  layout(0, 'bytes', 2), // 0xd4 fixext1 (type + 1)
  layout(0, 'bytes', 3), // 0xd5 fixext2
  layout(0, 'bytes', 5), // 0xd6 fixext4
  layout(0, 'bytes', 9), // 0xd7 fixext8
  layout(0, 'bytes', 17), // 0xd8 fixext16
  layout(1), // 0xd9 str8
  layout(2), // 0xda str16
  layout(4), // 0xdb str32
  layout(2, 'items'), // 0xdc array16
  layout(4, 'items'), // 0xdd array32
  layout(2, 'entries'), // 0xde map16
  layout(4, 'entries'), // 0xdf map32
];

/**
 * Why `bytes` is not exactly one complete msgpack document, or undefined when it is. Every
 * header must be valid and every length must fit in the bytes left, so once this passes,
 * decoding allocates O(input) and cannot fail for lack of data.
 */
export function msgpackFramingError(bytes: Uint8Array): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  let pos = 0;
  let pending = 1; // values still to read; each needs at least one byte
  while (pending > 0) {
    if (pos >= end) return `truncated at byte ${end}: ${pending} more values expected`;
    const head = bytes[pos]!;
    pending--;
    let header = 1;
    let payload = 0;
    let children = 0;
    if (head <= 0x7f || head >= 0xe0) {
      // positive or negative fixint
    } else if (head <= 0x8f) {
      children = 2 * (head & 0x0f); // fixmap
    } else if (head <= 0x9f) {
      children = head & 0x0f; // fixarray
    } else if (head <= 0xbf) {
      payload = head & 0x1f; // fixstr
    } else {
      const form = LONG_FORMS[head - 0xc0];
      if (!form) return `invalid type byte 0x${head.toString(16)} at ${pos}`;
      header = 1 + form.lengthBytes + form.extraHeader;
      if (pos + header > end) return `truncated header at byte ${pos}`;
      let length = form.fixedPayload;
      if (form.lengthBytes === 1) length = bytes[pos + 1]!;
      else if (form.lengthBytes === 2) length = view.getUint16(pos + 1);
      else if (form.lengthBytes === 4) length = view.getUint32(pos + 1);
      if (form.counts === 'bytes') payload = length;
      else children = form.counts === 'items' ? length : 2 * length;
    }
    pos += header + payload;
    if (pos > end) return `truncated: a value at byte ${pos - header - payload} runs past the end (${end})`;
    pending += children;
    if (pending > end - pos) return `${pending} values claimed but only ${end - pos} bytes left at ${pos}`;
  }
  return pos === end ? undefined : `${end - pos} extra bytes after the document`;
}
