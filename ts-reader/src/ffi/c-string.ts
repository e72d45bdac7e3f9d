/** Strings for `const char *` arguments, for the FFIs that take a byte buffer (bun:ffi, Deno). */
const encoder = new TextEncoder();

/** A NUL-terminated UTF-8 copy of `s` (borrowed by the C side for the duration of the call only). */
export function cString(s: string): Uint8Array {
  const bytes = new Uint8Array(s.length * 3 + 1);
  const { written } = encoder.encodeInto(s, bytes);
  bytes[written] = 0;
  return bytes;
}
