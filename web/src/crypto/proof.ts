/**
 * Proof objects (SPEC §6) and their verification in the browser without trusting the server:
 * the entry must hash to the leaf, the inclusion proof must reach `root_hash` at `tree_size`, and
 * (when the caller knows the logged object) the entry's digest must be that object's digest.
 */
import { fromHex, sha256, toHex, type Bytes } from "./bytes";
import { canonicalJson } from "./canonical";
import { leafHash, verifyConsistency, verifyInclusion } from "./merkle";

// the proof object of SPEC §6 and its parts, as the protocol's models declare them
export type { ConsistencyProof, LogEntry, ProofObject } from "../wire";
import type { ConsistencyProof, LogEntry, ProofObject } from "../wire";

export interface ProofCheck {
  ok: boolean;
  leafHash: string;
  reason?: string;
}

const HEX32 = /^[0-9a-f]{64}$/;

/** leaf = SHA-256(canonical JSON of the entry), 32 bytes. */
export async function entryLeaf(entry: LogEntry): Promise<Bytes> {
  const { kind, id, digest, at } = entry;
  return sha256(canonicalJson({ kind, id, digest, at }));
}

/** RFC 9162 leaf hash of an entry: SHA-256(0x00 || leaf). */
export async function entryLeafHash(entry: LogEntry): Promise<Bytes> {
  return leafHash(await entryLeaf(entry));
}

/** Offline check of a proof; `expectedDigest` ties it to an object the caller holds. */
export async function verifyProof(proof: ProofObject, expectedDigest?: string): Promise<ProofCheck> {
  if (proof.entry === null) return { ok: false, leafHash: "", reason: "entry not yet in the log" };
  const lh = toHex(await entryLeafHash(proof.entry));
  if (expectedDigest !== undefined && proof.entry.digest !== expectedDigest) {
    return { ok: false, leafHash: lh, reason: "the logged digest is not this object's digest" };
  }
  const { leaf_index, tree_size, root_hash, inclusion_proof } = proof;
  if (leaf_index == null || tree_size == null || root_hash == null || inclusion_proof == null) {
    return { ok: false, leafHash: lh, reason: "entry not yet in the log" };
  }
  if (!HEX32.test(root_hash) || !inclusion_proof.every((h) => HEX32.test(h))) {
    return { ok: false, leafHash: lh, reason: "malformed proof hashes" };
  }
  const ok = await verifyInclusion(leaf_index, tree_size, fromHex(lh), inclusion_proof.map(fromHex), fromHex(root_hash));
  return ok ? { ok, leafHash: lh } : { ok, leafHash: lh, reason: "inclusion proof does not reach root_hash" };
}

export async function verifyConsistencyProof(p: ConsistencyProof): Promise<boolean> {
  try {
    return await verifyConsistency(p.from_size, p.to_size, fromHex(p.from_root), fromHex(p.to_root), p.proof.map(fromHex));
  } catch {
    return false;
  }
}
