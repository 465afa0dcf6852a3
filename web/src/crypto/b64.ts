/**
 * Base64url without padding (RFC 4648 §5), decoded strictly like the Python protocol package:
 * padding, whitespace, the standard alphabet, impossible lengths and non-zero trailing bits are
 * all rejected, so one byte string has exactly one spelling.
 */
import type { Bytes } from "./bytes";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const LOOKUP = new Map<string, number>([...ALPHABET].map((c, i) => [c, i]));

export class B64Error extends Error {}

export function b64e(data: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 3 <= data.length; i += 3) {
    const n = (data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = data.length - i;
  if (rest === 1) {
    const n = data[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (data[i]! << 16) | (data[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}

export function b64d(text: string): Bytes {
  if (typeof text !== "string") throw new B64Error("not base64url without padding");
  if (text.length % 4 === 1) throw new B64Error("impossible base64url length");
  const values: number[] = [];
  for (const c of text) {
    const v = LOOKUP.get(c);
    if (v === undefined) throw new B64Error("not base64url without padding");
    values.push(v);
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let o = 0;
  for (let i = 0; i < values.length; i += 4) {
    const chunk = values.slice(i, i + 4);
    const n = chunk.reduce((acc, v, k) => acc | (v << (18 - 6 * k)), 0);
    const bytes = chunk.length - 1;
    for (let k = 0; k < bytes; k++) out[o++] = (n >> (16 - 8 * k)) & 255;
  }
  // Non-zero unused bits in the last character would give a second spelling of the same bytes.
  if (b64e(out) !== text) throw new B64Error("non-canonical base64url (trailing bits set)");
  return out;
}

export function b64dExact(text: string, size: number): Bytes {
  const data = b64d(text);
  if (data.length !== size) throw new B64Error(`expected ${size} bytes, got ${data.length}`);
  return data;
}
