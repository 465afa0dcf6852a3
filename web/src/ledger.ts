/**
 * The ledger this browser trusts (SPEC §11 "Pinned ledger"): one (chain_id, contract_address),
 * from the build (`VITE_CHAINCHAT_LEDGER=<chain_id>:<address>`) or pinned on first use from
 * /ledger/info, kept in IndexedDB and shown in Settings. A proof naming another chain or contract
 * fails with `ledger_mismatch` before the chain is asked. The browser keeps the largest tree head
 * it verified on chain; any other head is checked against it with an RFC 9162 consistency proof
 * from /ledger/consistency, and an inconsistent one is reported ("the server's log forked") and
 * never kept. The RPC URL is the user's (Settings); the server's `rpc_url_public` is only a default.
 */
import type { ApiClient } from "./api";
import type { LedgerInfo } from "./wire";
import { verifyOnChain, type ChainCheck } from "./chain";
import { verifyConsistencyProof, type ConsistencyProof, type ProofObject } from "./crypto/proof";
import { loadLedger, saveLedger, type LedgerRecord } from "./db";

export type LedgerPin = NonNullable<LedgerRecord["pin"]>;
export type TreeHead = NonNullable<LedgerRecord["head"]>;

export interface LedgerVerdict extends ChainCheck {
  /** null when valid; else ledger_mismatch, log_forked, invalid_proof, chain_unreachable, no_rpc */
  code: string | null;
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** `<chain_id>:<0x address>` → a pin, or null when the text is not one. */
export function parseLedger(text: string | undefined | null, source: LedgerPin["source"] = "config"): LedgerPin | null {
  const [chain, address] = (text ?? "").trim().split(":");
  if (!chain || !/^\d+$/.test(chain) || Number(chain) < 1 || !address || !ADDRESS.test(address)) return null;
  return { chain_id: Number(chain), contract_address: address, source };
}

export function namesLedger(pin: LedgerPin, chainId: number | null | undefined, address: string | null | undefined): boolean {
  return chainId === pin.chain_id && (address ?? "").toLowerCase() === pin.contract_address.toLowerCase();
}

/** Where consistency proofs come from (the gateway's GET /ledger/consistency). */
export type ConsistencySource = (fromSize: number, toSize: number) => Promise<ConsistencyProof>;

/** Throws "the server's log forked: …" unless `a` and `b` are heads of one append-only log. */
export async function checkConsistent(source: ConsistencySource, a: TreeHead, b: TreeHead): Promise<void> {
  const forked = (detail: string): Error => new Error(`the server's log forked: ${detail}`);
  if (a.tree_size === b.tree_size) {
    if (a.root_hash !== b.root_hash) throw forked(`two different roots for tree size ${a.tree_size}`);
    return;
  }
  const [small, large] = a.tree_size < b.tree_size ? [a, b] : [b, a];
  const p = await source(small.tree_size, large.tree_size);
  if (p.from_size !== small.tree_size || p.to_size !== large.tree_size) throw forked(`asked for sizes ${small.tree_size}→${large.tree_size}, got another proof`);
  if (p.from_root !== small.root_hash || p.to_root !== large.root_hash) throw forked(`heads of size ${small.tree_size} and ${large.tree_size} are not the roots it proves consistent`);
  if (!(await verifyConsistencyProof(p))) throw forked(`tree size ${large.tree_size} does not extend tree size ${small.tree_size} (the consistency proof does not verify)`);
}

export class LedgerTrust {
  private record: Promise<LedgerRecord>;
  private queue: Promise<unknown> = Promise.resolve();
  private verified = new Map<string, LedgerVerdict>();
  private infoOnce: Promise<LedgerInfo> | null = null;

  constructor(
    private readonly api: ApiClient,
    private readonly owner: string,
    private readonly configured: LedgerPin | null = parseLedger(import.meta.env.VITE_CHAINCHAT_LEDGER),
  ) {
    this.record = loadLedger(owner);
  }

  /** /ledger/info, asked once per page (again after a failure). */
  private info(): Promise<LedgerInfo> {
    this.infoOnce ??= this.api.ledgerInfo();
    this.infoOnce.catch(() => (this.infoOnce = null));
    return this.infoOnce;
  }

  private async update(fn: (r: LedgerRecord) => LedgerRecord | Promise<LedgerRecord>): Promise<LedgerRecord> {
    const next = this.queue.then(async () => {
      const r = await fn({ ...(await this.record) });
      await saveLedger(this.owner, r);
      this.record = Promise.resolve(r);
      return r;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  async state(): Promise<LedgerRecord> {
    return this.record;
  }

  /** The pinned ledger: the build's, else the saved one, else the server's now (first use). */
  async pin(): Promise<LedgerPin> {
    const saved = (await this.record).pin;
    if (this.configured) {
      if (!saved || !namesLedger(this.configured, saved.chain_id, saved.contract_address)) await this.update(() => ({ pin: this.configured, head: null, rpcUrl: null }));
      return this.configured;
    }
    if (saved) return saved;
    const info = await this.info();
    if (!info?.chain_id || !info?.contract_address) throw new Error("The server names no ledger contract yet.");
    const pin: LedgerPin = { chain_id: info.chain_id, contract_address: info.contract_address, source: "first_use" };
    const r = await this.update((rec) => (rec.pin ? rec : { ...rec, pin }));
    return r.pin!;
  }

  /** The RPC URL to ask: the user's setting, else the server's public one. */
  async rpcUrl(): Promise<string | null> {
    const own = (await this.record).rpcUrl;
    if (own) return own;
    const info = await this.info().catch(() => null);
    return info?.rpc_url_public ?? null;
  }

  async setRpcUrl(url: string | null): Promise<void> {
    if (url) new URL(url); // throws on a malformed URL
    await this.update((r) => ({ ...r, rpcUrl: url || null }));
  }

  /** Check a verified head against the largest one kept; keep it when larger. Throws on a fork. */
  observeHead(head: TreeHead, source: ConsistencySource = (f, t) => this.api.consistency(f, t)): Promise<LedgerRecord> {
    return this.update(async (r) => {
      if (r.head) await checkConsistent(source, r.head, head);
      return !r.head || head.tree_size > r.head.tree_size ? { ...r, head } : r;
    });
  }

  /** Full check of an anchored proof whose leaf hash the caller computed: pinned ledger, on
   *  chain through the user's RPC, consistent with the heads verified before. Never throws. */
  async verify(proof: ProofObject, leafHash: string): Promise<LedgerVerdict> {
    const key = `${leafHash}:${proof.head_index}:${proof.root_hash}:${proof.contract_address}:${proof.chain_id}`;
    const cached = this.verified.get(key);
    if (cached) return cached;
    const verdict = await this.check(proof, leafHash);
    if (verdict.ok) this.verified.set(key, verdict);
    return verdict;
  }

  private async check(proof: ProofObject, leafHash: string): Promise<LedgerVerdict> {
    let pin: LedgerPin;
    try {
      pin = await this.pin();
    } catch (err) {
      return { ok: false, checks: [], code: "no_ledger", detail: err instanceof Error ? err.message : String(err) };
    }
    if (!namesLedger(pin, proof.chain_id, proof.contract_address)) {
      return { ok: false, checks: [], code: "ledger_mismatch", detail: `ledger_mismatch: the proof names contract ${proof.contract_address} on chain ${proof.chain_id}, but this browser pinned contract ${pin.contract_address} on chain ${pin.chain_id}.` };
    }
    const rpcUrl = await this.rpcUrl();
    if (!rpcUrl) return { ok: false, checks: [], code: "no_rpc", detail: "No chain RPC URL is set (Settings) and the ledger publishes none: the on-chain check is not possible from here." };
    let chain: ChainCheck;
    try {
      chain = await verifyOnChain(proof, leafHash, rpcUrl);
    } catch (err) {
      return { ok: false, checks: [], code: "chain_unreachable", detail: `Could not reach the chain at ${rpcUrl}: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (!chain.ok) return { ...chain, code: "invalid_proof" };
    try {
      await this.observeHead({ tree_size: proof.tree_size!, root_hash: proof.root_hash!, head_index: proof.head_index ?? null });
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      return { ok: false, checks: chain.checks, code: detail.startsWith("the server's log forked") ? "log_forked" : "consistency_unavailable", detail };
    }
    return { ...chain, code: null, checks: [...chain.checks, "consistent with every tree head this browser verified before"] };
  }
}
