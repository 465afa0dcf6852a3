import { describe, expect, it } from "vitest";
import { checkConsistent, namesLedger, parseLedger } from "../src/ledger";
import { confirmPin, reconcilePin, unconfirmedOf } from "../src/pins";
import { vector } from "./vectors";

const NOW = "2026-12-03T12:00:00.000Z";
const ID = "me:peer";

describe("device pins", () => {
  it("pins on first sight, then never adds a device by itself", () => {
    const first = reconcilePin(ID, null, ["b", "a"], [], NOW);
    expect(first.pin?.keyIds).toEqual(["a", "b"]);
    expect(first.added).toEqual([]);
    const later = reconcilePin(ID, first.pin, ["a", "b", "c"], [], NOW);
    expect(later.added).toEqual(["c"]);
    expect(later.pin?.keyIds).toEqual(["a", "b"]);
    expect(later.pin?.changed?.to).toEqual(["a", "b", "c"]);
    expect(unconfirmedOf(later.pin, ["a", "b", "c"], [])).toEqual(["c"]);
    // seen again: still unconfirmed, still the first sighting's time
    const again = reconcilePin(ID, later.pin, ["a", "b", "c"], [], "2026-12-03T13:00:00.000Z");
    expect(again.pin?.keyIds).toEqual(["a", "b"]);
    expect(again.pin?.changed?.seenAt).toBe(NOW);
  });

  it("drops a revoked device and keeps this device's own key confirmed", () => {
    const start = reconcilePin("me:me", null, ["a"], ["own"], NOW).pin;
    expect(start?.keyIds).toEqual(["a", "own"]);
    const revoked = reconcilePin("me:me", start, [], ["own"], NOW);
    expect(revoked.removed).toEqual(["a"]);
    expect(revoked.pin?.keyIds).toEqual(["own"]);
    expect(revoked.pin?.changed).toBeNull();
    expect(unconfirmedOf(revoked.pin, ["own"], ["own"])).toEqual([]);
  });

  it("a rotation (every pinned device gone, a new one published) still needs confirming", () => {
    const start = reconcilePin(ID, null, ["old"], [], NOW).pin;
    const rotated = reconcilePin(ID, start, ["new"], [], NOW);
    expect(rotated.removed).toEqual(["old"]);
    expect(rotated.added).toEqual(["new"]);
    expect(rotated.pin?.keyIds).toEqual([]);
    expect(unconfirmedOf(rotated.pin, ["new"], [])).toEqual(["new"]);
    expect(reconcilePin(ID, rotated.pin, ["new"], [], NOW).pin?.keyIds).toEqual([]);
  });

  it("confirming pins exactly what is published", () => {
    const pin = confirmPin(ID, ["c", "a"], [], NOW, true);
    expect(pin).toMatchObject({ keyIds: ["a", "c"], changed: null, verified: true });
    expect(unconfirmedOf(pin, ["a", "c"], [])).toEqual([]);
  });
});

describe("pinned ledger", () => {
  const address = `0x${"ab".repeat(20)}`;
  it("parses <chain_id>:<address> and compares addresses in any case", () => {
    const pin = parseLedger(`1337:${address}`)!;
    expect(pin).toEqual({ chain_id: 1337, contract_address: address, source: "config" });
    expect(namesLedger(pin, 1337, address.toUpperCase().replace("0X", "0x"))).toBe(true);
    expect(namesLedger(pin, 1, address)).toBe(false);
    expect(namesLedger(pin, 1337, `0x${"cd".repeat(20)}`)).toBe(false);
    for (const bad of ["", "1337", `x:${address}`, "1337:0x12", `0:${address}`]) expect(parseLedger(bad)).toBeNull();
  });
});

describe("fork detection (RFC 9162 consistency)", () => {
  const m = vector("merkle.json");
  const cases = (m.ct.consistency as any[]).filter((c) => c.first > 0 && c.first < c.second);
  const served = (c: any) => async (f: number, t: number) => ({ from_size: f, to_size: t, from_root: c.first_root_hex, to_root: c.second_root_hex, proof: c.proof_hex });

  it("accepts heads of one log, either order", async () => {
    for (const c of cases) {
      const a = { tree_size: c.first, root_hash: c.first_root_hex, head_index: null };
      const b = { tree_size: c.second, root_hash: c.second_root_hex, head_index: null };
      await checkConsistent(served(c), a, b);
      await checkConsistent(served(c), b, a);
    }
  });

  it("reports a fork for another root, a proof that does not verify, or different roots at one size", async () => {
    const c = cases.find((x) => x.proof_hex.length > 0)!;
    const a = { tree_size: c.first, root_hash: c.first_root_hex, head_index: null };
    const other = { tree_size: c.second, root_hash: "11".repeat(32), head_index: null };
    await expect(checkConsistent(served(c), a, other)).rejects.toThrow("the server's log forked");
    const liar = async (f: number, t: number) => ({ ...(await served(c)(f, t)), to_root: other.root_hash, proof: c.proof_hex.map(() => "00".repeat(32)) });
    await expect(checkConsistent(liar, a, other)).rejects.toThrow("does not verify");
    await expect(checkConsistent(served(c), a, { ...a, root_hash: "22".repeat(32) })).rejects.toThrow("two different roots");
  });
});
