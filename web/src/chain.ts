/**
 * Independent on-chain check of a proof (SPEC §6): ask an Ethereum JSON-RPC endpoint — and only
 * it — for ChainChatLedger.head(head_index) and compare (treeSize, rootHash) with the proof.
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { toHex, utf8 } from "./crypto/bytes";
import type { ProofObject } from "./crypto/proof";

const HEAD_SELECTOR = toHex(keccak_256(utf8("head(uint256)")).slice(0, 4));

async function rpc(url: string, method: string, params: unknown[]): Promise<any> {
  const resp = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = await resp.json();
  if (body.error) throw new Error(`chain RPC error: ${body.error.message ?? JSON.stringify(body.error)}`);
  return body.result;
}

export interface ChainCheck {
  ok: boolean;
  detail: string;
}

export async function checkHeadOnChain(proof: ProofObject, rpcUrl: string): Promise<ChainCheck> {
  if (proof.head_index == null || !proof.contract_address) return { ok: false, detail: "The proof is not anchored yet." };
  const chainId = parseInt(await rpc(rpcUrl, "eth_chainId", []), 16);
  if (proof.chain_id != null && chainId !== proof.chain_id) {
    return { ok: false, detail: `The RPC endpoint serves chain ${chainId}, the proof names chain ${proof.chain_id}.` };
  }
  const data = `0x${HEAD_SELECTOR}${proof.head_index.toString(16).padStart(64, "0")}`;
  const result: string = await rpc(rpcUrl, "eth_call", [{ to: proof.contract_address, data }, "latest"]);
  const words = (result ?? "").replace(/^0x/, "");
  if (words.length < 128) return { ok: false, detail: "The contract returned no tree head for this index." };
  const treeSize = parseInt(words.slice(0, 64), 16);
  const root = words.slice(64, 128).toLowerCase();
  const ok = treeSize === proof.tree_size && root === proof.root_hash;
  return {
    ok,
    detail: ok
      ? `Head #${proof.head_index} on chain ${chainId} is (${treeSize}, ${root.slice(0, 16)}…): it matches the proof.`
      : `Head #${proof.head_index} on chain is (${treeSize}, ${root.slice(0, 16)}…), which does NOT match the proof.`,
  };
}
