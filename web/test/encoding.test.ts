import { describe, expect, it } from "vitest";
import { B64Error, b64d, b64e } from "../src/crypto/b64";
import { fromHex, toHex } from "../src/crypto/bytes";
import { canonicalJson, canonicalString } from "../src/crypto/canonical";
import { importDeviceKeys, keyId } from "../src/crypto/keys";
import { formatSafetyNumber, safetyFingerprint, safetyNumber } from "../src/crypto/safety";
import { vector } from "./vectors";

describe("base64url (b64.json)", () => {
  const v = vector("b64.json");
  it.each(v.valid as { bytes_hex: string; b64: string }[])("round-trips $b64", ({ bytes_hex, b64 }) => {
    expect(b64e(fromHex(bytes_hex))).toBe(b64);
    expect(toHex(b64d(b64))).toBe(bytes_hex);
  });
  it.each(v.invalid as { b64: string; reason: string }[])("rejects $b64 ($reason)", ({ b64 }) => {
    expect(() => b64d(b64)).toThrow(B64Error);
  });
});

describe("canonical JSON (canonical_json.json)", () => {
  const v = vector("canonical_json.json");
  it.each(v.cases as { input: string; canonical: string; canonical_hex: string }[])("canonicalises $input", (c) => {
    const parsed = JSON.parse(c.input);
    expect(canonicalString(parsed)).toBe(c.canonical);
    expect(toHex(canonicalJson(parsed))).toBe(c.canonical_hex);
  });
  it("rejects non-JSON values", () => {
    expect(() => canonicalString({ a: NaN })).toThrow();
    expect(() => canonicalString("\ud800")).toThrow();
  });
});

describe("key ids (key_ids.json)", () => {
  const v = vector("key_ids.json");
  it.each(v.cases as any[])("key id $key_id", async (c) => {
    expect(await keyId(fromHex(c.x25519_public_hex), fromHex(c.ed25519_public_hex))).toBe(c.key_id);
    const keys = await importDeviceKeys(fromHex(c.x25519_private_hex), fromHex(c.ed25519_private_hex));
    expect(toHex(keys.x25519Public)).toBe(c.x25519_public_hex);
    expect(toHex(keys.ed25519Public)).toBe(c.ed25519_public_hex);
    expect(keys.keyId).toBe(c.key_id);
    expect(keys.x25519.privateKey.extractable).toBe(false);
    expect(keys.ed25519.privateKey.extractable).toBe(false);
  });
});

describe("safety numbers (safety_numbers.json)", () => {
  const v = vector("safety_numbers.json");
  it.each(v.cases as any[])("$user_a / $user_b", async (c) => {
    expect(await safetyFingerprint(c.user_a, c.key_ids_a)).toBe(c.fingerprint_a);
    expect(await safetyFingerprint(c.user_b, c.key_ids_b)).toBe(c.fingerprint_b);
    const n = await safetyNumber(c.user_a, c.key_ids_a, c.user_b, c.key_ids_b);
    expect(n).toBe(c.safety_number);
    expect(await safetyNumber(c.user_b, c.key_ids_b, c.user_a, c.key_ids_a)).toBe(n);
    expect(formatSafetyNumber(n)).toBe(c.display);
  });
});

describe("EIP-55 addresses for Sign-In with Ethereum", () => {
  it("checksums like the EIP's examples", async () => {
    const { checksumAddress } = await import("../src/siwe");
    for (const a of ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"]) {
      expect(checksumAddress(a.toLowerCase())).toBe(a);
    }
  });
});
