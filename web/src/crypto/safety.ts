/**
 * Safety numbers v0 (SPEC §4), identical to chainchat.crypto.safety:
 * key = the user's key ids as raw bytes, de-duplicated and sorted by hex; h = uint16_be(0) || key
 * || utf8(user_id); 5200 times h = SHA-512(h || key); six groups of (5 bytes big-endian mod
 * 100000); the two users' 30-digit halves concatenated in ascending order.
 */
import { concat, fromHex, sha512, utf8 } from "./bytes";
import { isKeyId } from "./keys";

export const SAFETY_ITERATIONS = 5200;

export async function safetyFingerprint(userId: string, keyIds: Iterable<string>): Promise<string> {
  const ids = [...new Set(keyIds)].sort();
  if (ids.length === 0 || !ids.every(isKeyId)) throw new Error("need at least one key id of 32 lowercase hex characters");
  const key = concat(...ids.map(fromHex));
  let h = concat(new Uint8Array([0, 0]), key, utf8(userId));
  for (let i = 0; i < SAFETY_ITERATIONS; i++) h = await sha512(concat(h, key));
  let out = "";
  for (let i = 0; i < 30; i += 5) {
    let n = 0n;
    for (const b of h.subarray(i, i + 5)) n = (n << 8n) | BigInt(b);
    out += (n % 100000n).toString().padStart(5, "0");
  }
  return out;
}

export async function safetyNumber(userA: string, keyIdsA: Iterable<string>, userB: string, keyIdsB: Iterable<string>): Promise<string> {
  const halves = [await safetyFingerprint(userA, keyIdsA), await safetyFingerprint(userB, keyIdsB)].sort();
  return halves[0]! + halves[1]!;
}

export function formatSafetyNumber(n: string): string {
  if (!/^\d{60}$/.test(n)) throw new Error("a safety number has 60 digits");
  return n.match(/.{5}/g)!.join(" ");
}
