/**
 * RFC 9162 Merkle tree verification over SHA-256 (leaf hash SHA-256(0x00 || leaf), node hash
 * SHA-256(0x01 || left || right)): inclusion (§2.1.3.2) and consistency (§2.1.4.2), step by step
 * as the RFC describes them, mirroring chainchat_protocol.merkle. Never throws on bad input.
 */
import { concat, equalBytes, sha256, type Bytes } from "./bytes";

export const HASH_SIZE = 32;

export function leafHash(leaf: Uint8Array): Promise<Bytes> {
  return sha256(concat(new Uint8Array([0]), leaf));
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Bytes> {
  return sha256(concat(new Uint8Array([1]), left, right));
}

/** Merkle Tree Hash of leaf hashes (RFC 9162 §2.1.1 recursion; reference for tests). */
export async function merkleRoot(leafHashes: Bytes[]): Promise<Bytes> {
  const n = leafHashes.length;
  if (n === 0) return sha256(new Uint8Array(0));
  if (n === 1) return leafHashes[0]!;
  let k = 1;
  while (k * 2 < n) k *= 2;
  return nodeHash(await merkleRoot(leafHashes.slice(0, k)), await merkleRoot(leafHashes.slice(k)));
}

const wellFormed = (hashes: Uint8Array[]): boolean => hashes.every((h) => h instanceof Uint8Array && h.length === HASH_SIZE);

// Tree sizes are far below 2**53, but bit operations in JS are 32-bit: use plain arithmetic.
const isOdd = (x: number): boolean => x % 2 === 1;
const half = (x: number): number => Math.floor(x / 2);
const isPowerOfTwo = (x: number): boolean => {
  while (x > 1 && x % 2 === 0) x /= 2;
  return x === 1;
};

/** Root computed from an inclusion proof, or null when the proof is malformed. */
export async function rootFromInclusionProof(leafIndex: number, treeSize: number, leaf: Uint8Array, proof: Uint8Array[]): Promise<Bytes | null> {
  if (!(Number.isSafeInteger(leafIndex) && Number.isSafeInteger(treeSize) && 0 <= leafIndex && leafIndex < treeSize)) return null;
  if (!wellFormed([leaf, ...proof])) return null;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r: Bytes = new Uint8Array(leaf);
  for (const p of proof) {
    if (sn === 0) return null;
    if (isOdd(fn) || fn === sn) {
      r = await nodeHash(p, r);
      if (!isOdd(fn)) {
        while (fn !== 0 && !isOdd(fn)) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? r : null;
}

export async function verifyInclusion(leafIndex: number, treeSize: number, leaf: Uint8Array, proof: Uint8Array[], root: Uint8Array): Promise<boolean> {
  const computed = await rootFromInclusionProof(leafIndex, treeSize, leaf, proof);
  return computed !== null && equalBytes(computed, root);
}

export async function verifyConsistency(first: number, second: number, firstRoot: Uint8Array, secondRoot: Uint8Array, proof: Uint8Array[]): Promise<boolean> {
  if (!(Number.isSafeInteger(first) && Number.isSafeInteger(second) && 0 <= first && first <= second)) return false;
  if (!wellFormed([firstRoot, secondRoot, ...proof])) return false;
  if (first === second) return proof.length === 0 && equalBytes(firstRoot, secondRoot);
  if (first === 0) return proof.length === 0;
  if (proof.length === 0) return false; // step 1
  const path = [...proof];
  if (isPowerOfTwo(first)) path.unshift(firstRoot); // step 2
  let fn = first - 1; // step 3
  let sn = second - 1;
  while (isOdd(fn)) {
    // step 4
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Uint8Array = path[0]!; // step 5
  let sr: Uint8Array = path[0]!;
  for (const c of path.slice(1)) {
    // step 6
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (fn !== 0 && !isOdd(fn)) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalBytes(fr, firstRoot) && equalBytes(sr, secondRoot); // step 7
}
