import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../src/crypto/bytes";
import { leafHash, merkleRoot, verifyConsistency, verifyInclusion } from "../src/crypto/merkle";
import { entryLeaf, entryLeafHash, verifyProof, type LogEntry, type ProofObject } from "../src/crypto/proof";
import { vector } from "./vectors";

const m = vector("merkle.json");

describe("RFC 9162 Merkle tree (merkle.json)", () => {
  it("computes the CT reference roots", async () => {
    const hashes = await Promise.all((m.ct.leaves_hex as string[]).map((h) => leafHash(fromHex(h))));
    for (let n = 0; n <= hashes.length; n++) expect(toHex(await merkleRoot(hashes.slice(0, n)))).toBe(m.ct.roots_hex[n]);
  });

  for (const group of ["ct", "generated"] as const) {
    it(`verifies inclusion proofs (${group})`, async () => {
      for (const c of m[group].inclusion) {
        const proof = c.proof_hex.map(fromHex);
        expect(await verifyInclusion(c.leaf_index, c.tree_size, fromHex(c.leaf_hash_hex), proof, fromHex(c.root_hex))).toBe(true);
        // Any change breaks it.
        expect(await verifyInclusion(c.leaf_index + 1, c.tree_size, fromHex(c.leaf_hash_hex), proof, fromHex(c.root_hex))).toBe(false);
        if (proof.length > 0) {
          const bad = proof.map((p: Uint8Array) => p.slice());
          bad[0][0] ^= 1;
          expect(await verifyInclusion(c.leaf_index, c.tree_size, fromHex(c.leaf_hash_hex), bad, fromHex(c.root_hex))).toBe(false);
        }
      }
    });

    it(`verifies consistency proofs (${group})`, async () => {
      for (const c of m[group].consistency) {
        const proof = c.proof_hex.map(fromHex);
        const ok = await verifyConsistency(c.first, c.second, fromHex(c.first_root_hex), fromHex(c.second_root_hex), proof);
        expect(ok).toBe(true);
        if (c.first !== c.second) {
          const swapped = await verifyConsistency(c.first, c.second, fromHex(c.second_root_hex), fromHex(c.first_root_hex), proof);
          expect(swapped).toBe(false);
        }
      }
    });
  }
});

describe("log entries and proof objects (log_entry.json)", () => {
  const v = vector("log_entry.json");
  it.each(v.entries as any[])("hashes $entry.kind entries", async (e) => {
    expect(toHex(await entryLeaf(e.entry))).toBe(e.leaf_hex);
    expect(toHex(await entryLeafHash(e.entry))).toBe(e.leaf_hash_hex);
  });

  it("verifies the proof object offline and rejects a changed entry", async () => {
    const proof = v.proof as ProofObject & { entry: LogEntry };
    expect(await verifyProof(proof)).toMatchObject({ ok: true });
    expect(await verifyProof(proof, proof.entry.digest)).toMatchObject({ ok: true });
    expect((await verifyProof(proof, "0".repeat(64))).ok).toBe(false);
    const changed = { ...proof, entry: { ...proof.entry, at: "2025-01-01T00:00:03.000Z" } };
    expect((await verifyProof(changed)).ok).toBe(false);
    const pending = { ...proof, status: "pending" as const, leaf_index: null, tree_size: null, root_hash: null, inclusion_proof: null };
    expect(await verifyProof(pending)).toMatchObject({ ok: false, reason: "entry not yet in the log" });
    const notReceived: ProofObject = { ...pending, entry: null };
    expect(await verifyProof(notReceived, proof.entry.digest)).toMatchObject({ ok: false, reason: "entry not yet in the log" });
  });
});
