/**
 * Device keys (SPEC §4): an X25519 pair for HPKE key wrapping and an Ed25519 pair for envelope
 * signatures, held as WebCrypto keys. Keys generated here are non-extractable: the private halves
 * can be used and stored in IndexedDB (structured clone keeps them opaque) but never read out.
 */
import { b64d, b64e } from "./b64";
import { concat, copy, sha256, toHex, type Bytes } from "./bytes";
import type { PublishKeyBody } from "../wire";

export const SUITE_AES256GCM = "hpke-x25519-aes256gcm";
export const SUITE_BLOWFISH = "hpke-x25519-blowfish";
export const SUITES = [SUITE_AES256GCM, SUITE_BLOWFISH] as const;
export type Suite = (typeof SUITES)[number];

/** A device's published public keys, labelled with its owner (from `GET /keys/{user_id}`). */
export interface PublicDeviceKey {
  userId: string;
  keyId: string;
  x25519Public: Bytes;
  ed25519Public: Bytes;
}

/** The key pairs of this device. */
export interface DeviceKeys {
  keyId: string;
  x25519: CryptoKeyPair;
  ed25519: CryptoKeyPair;
  x25519Public: Bytes;
  ed25519Public: Bytes;
}

/** key_id = lowercase hex of SHA-256(x25519_public || ed25519_public)[:16]. */
export async function keyId(x25519Public: Uint8Array, ed25519Public: Uint8Array): Promise<string> {
  if (x25519Public.length !== 32 || ed25519Public.length !== 32) {
    throw new Error("public keys must be 32 raw bytes each");
  }
  return toHex((await sha256(concat(x25519Public, ed25519Public))).slice(0, 16));
}

export function isKeyId(value: unknown): value is string {
  return typeof value === "string" && /^[0-9a-f]{32}$/.test(value);
}

async function exportRaw(key: CryptoKey): Promise<Bytes> {
  return copy(await crypto.subtle.exportKey("raw", key));
}

async function assemble(x25519: CryptoKeyPair, ed25519: CryptoKeyPair): Promise<DeviceKeys> {
  const x25519Public = await exportRaw(x25519.publicKey);
  const ed25519Public = await exportRaw(ed25519.publicKey);
  return { keyId: await keyId(x25519Public, ed25519Public), x25519, ed25519, x25519Public, ed25519Public };
}

/** Fresh device keys; private keys are non-extractable unless `extractable` (tests only). */
export async function generateDeviceKeys(extractable = false): Promise<DeviceKeys> {
  const x25519 = (await crypto.subtle.generateKey({ name: "X25519" }, extractable, ["deriveBits"])) as CryptoKeyPair;
  const ed25519 = (await crypto.subtle.generateKey({ name: "Ed25519" }, extractable, ["sign", "verify"])) as CryptoKeyPair;
  return assemble(x25519, ed25519);
}

// PKCS#8 wrappers of raw 32-byte private keys (RFC 8410): the only private import format that
// both Chromium and Node accept without also knowing the public key.
const PKCS8_PREFIX = {
  X25519: [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20],
  Ed25519: [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20],
};

async function importPair(alg: "X25519" | "Ed25519", raw: Uint8Array, extractable: boolean): Promise<CryptoKeyPair> {
  if (raw.length !== 32) throw new Error("private keys must be 32 raw bytes");
  const pkcs8 = concat(new Uint8Array(PKCS8_PREFIX[alg]), raw);
  const usages: KeyUsage[] = alg === "X25519" ? ["deriveBits"] : ["sign"];
  // The public key is only reachable through a JWK export of the private key.
  const probe = await crypto.subtle.importKey("pkcs8", pkcs8, { name: alg }, true, usages);
  const jwk = await crypto.subtle.exportKey("jwk", probe);
  const publicKey = await crypto.subtle.importKey("raw", b64d(jwk.x!), { name: alg }, true, alg === "X25519" ? [] : ["verify"]);
  const privateKey = extractable ? probe : await crypto.subtle.importKey("pkcs8", pkcs8, { name: alg }, false, usages);
  return { privateKey, publicKey };
}

/** Device keys from raw private keys (e.g. a CLI key file, or test vectors). */
export async function importDeviceKeys(x25519Private: Uint8Array, ed25519Private: Uint8Array, extractable = false): Promise<DeviceKeys> {
  return assemble(await importPair("X25519", x25519Private, extractable), await importPair("Ed25519", ed25519Private, extractable));
}

/** Body of `PUT /keys/me`. */
export function publishBody(keys: DeviceKeys, suites: readonly Suite[] = SUITES): PublishKeyBody {
  return { x25519_public: b64e(keys.x25519Public), ed25519_public: b64e(keys.ed25519Public), suite_support: [...suites] };
}

/** A directory entry of `GET /keys/{user_id}`, checked: the key id must match the keys. */
export async function publicKeyFromDirectory(
  userId: string,
  entry: { key_id: string; x25519_public: string; ed25519_public: string },
): Promise<PublicDeviceKey> {
  const x25519Public = b64d(entry.x25519_public);
  const ed25519Public = b64d(entry.ed25519_public);
  const kid = await keyId(x25519Public, ed25519Public);
  if (kid !== entry.key_id) throw new Error(`directory key ${entry.key_id} does not match its public keys`);
  return { userId, keyId: kid, x25519Public, ed25519Public };
}

export async function ed25519Sign(keys: DeviceKeys, message: Uint8Array<ArrayBuffer>): Promise<Bytes> {
  return copy(await crypto.subtle.sign({ name: "Ed25519" }, keys.ed25519.privateKey, message));
}

export async function ed25519Verify(publicKey: Uint8Array<ArrayBuffer>, signature: Uint8Array<ArrayBuffer>, message: Uint8Array<ArrayBuffer>): Promise<boolean> {
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}
