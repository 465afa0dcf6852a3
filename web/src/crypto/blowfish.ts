/**
 * Content cipher of the `hpke-x25519-blowfish` suite (SPEC §5, the original design's cipher):
 * Blowfish with a 256-bit key in CTR mode, then HMAC-SHA256 (encrypt-then-MAC).
 *
 * The block cipher itself comes from `egoroof-blowfish` (ECB on exactly one 8-byte block is the
 * raw permutation); CTR is built here exactly as the Python SDK (PyCryptodome) does it: counter
 * block i = nonce[0:4] || uint32_be(uint32_be(nonce[4:8]) + i).
 * Keys: Ke / Km = HKDF-SHA256(content_key, salt = "", info = "chainchat/v1/blowfish/enc" / "…/mac").
 * Tag: HMAC-SHA256(Km, uint64_be(len(aad)) || aad || nonce || ct), checked before decrypting.
 */
import { Blowfish } from "egoroof-blowfish";
import { concat, copy, equalBytes, hmacSha256, uint64be, utf8, type Bytes } from "./bytes";

export const BLOWFISH_NONCE_SIZE = 8;
export const HMAC_TAG_SIZE = 32;
const ENC_INFO = utf8("chainchat/v1/blowfish/enc");
const MAC_INFO = utf8("chainchat/v1/blowfish/mac");

async function hkdf32(key: Bytes, info: Bytes): Promise<Bytes> {
  const base = await crypto.subtle.importKey("raw", key, "HKDF", false, ["deriveBits"]);
  return copy(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info }, base, 256));
}

/** The Blowfish-CTR key and the HMAC key derived from a content key. */
export async function blowfishKeys(contentKey: Bytes): Promise<[Bytes, Bytes]> {
  return [await hkdf32(contentKey, ENC_INFO), await hkdf32(contentKey, MAC_INFO)];
}

/** Blowfish-CTR keystream XOR (encryption and decryption are the same operation). */
export function blowfishCtr(key: Uint8Array, nonce: Uint8Array, data: Uint8Array): Bytes {
  if (nonce.length !== BLOWFISH_NONCE_SIZE) throw new Error("Blowfish-CTR needs an 8-byte nonce");
  const cipher = new Blowfish(key, Blowfish.MODE.ECB, Blowfish.PADDING.NULL);
  const start = new DataView(nonce.buffer, nonce.byteOffset, 8).getUint32(4, false);
  const out = new Uint8Array(data.length);
  const block = new Uint8Array(8);
  block.set(nonce.subarray(0, 4), 0);
  const view = new DataView(block.buffer);
  for (let off = 0, i = 0; off < data.length; off += 8, i++) {
    view.setUint32(4, (start + i) >>> 0, false);
    const stream = cipher.encode(block);
    const n = Math.min(8, data.length - off);
    for (let k = 0; k < n; k++) out[off + k] = data[off + k]! ^ stream[k]!;
  }
  return out;
}

function tag(macKey: Bytes, aad: Bytes, nonce: Bytes, ct: Bytes): Promise<Bytes> {
  return hmacSha256(macKey, concat(uint64be(aad.length), aad, nonce, ct));
}

export async function blowfishEncrypt(contentKey: Bytes, nonce: Bytes, body: Bytes, aad: Bytes): Promise<Bytes> {
  const [encKey, macKey] = await blowfishKeys(contentKey);
  const ct = blowfishCtr(encKey, nonce, body);
  return concat(ct, await tag(macKey, aad, nonce, ct));
}

/** Returns the plaintext, or null when the tag does not verify (nothing is decrypted then). */
export async function blowfishDecrypt(contentKey: Bytes, nonce: Bytes, data: Bytes, aad: Bytes): Promise<Bytes | null> {
  if (data.length < HMAC_TAG_SIZE) return null;
  const [encKey, macKey] = await blowfishKeys(contentKey);
  const ct = data.slice(0, data.length - HMAC_TAG_SIZE);
  if (!equalBytes(data.slice(data.length - HMAC_TAG_SIZE), await tag(macKey, aad, nonce, ct))) return null;
  return blowfishCtr(encKey, nonce, ct);
}
