/**
 * RFC 8785 JSON Canonicalization Scheme: the one serialisation that is hashed, signed or used as
 * associated data in ChainChat (the Python side uses the `rfc8785` package; the shared vectors in
 * protocol/chainchat_protocol/vectors/canonical_json.json pin both).
 *
 * ECMAScript already gives RFC 8785 its number and string forms: `JSON.stringify` on a number is
 * the ES6 shortest round-trip form the RFC adopts, and on a string it escapes exactly the RFC's
 * set. What is left is sorting keys by UTF-16 code units (the default `sort` order) and refusing
 * values JSON cannot carry.
 */
import { utf8, type Bytes } from "./bytes";

export class CanonicalJSONError extends Error {}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function serialise(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new CanonicalJSONError("NaN and Infinity are not JSON");
      return JSON.stringify(value);
    case "string":
      if (/\p{Surrogate}/u.test(value)) throw new CanonicalJSONError("lone surrogate in string");
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map(serialise).join(",")}]`;
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).filter((k) => record[k] !== undefined);
      keys.sort();
      for (const k of keys) {
        if (/\p{Surrogate}/u.test(k)) throw new CanonicalJSONError("lone surrogate in key");
      }
      return `{${keys.map((k) => `${JSON.stringify(k)}:${serialise(record[k])}`).join(",")}}`;
    }
    default:
      throw new CanonicalJSONError(`${typeof value} is not a JSON value`);
  }
}

/** Canonical JSON text of `value`. */
export function canonicalString(value: unknown): string {
  return serialise(value);
}

/** Canonical JSON of `value` as UTF-8 bytes. */
export function canonicalJson(value: unknown): Bytes {
  return utf8(serialise(value));
}
