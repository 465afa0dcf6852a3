/**
 * Independent on-chain check of a proof (SPEC §6), in the browser: ask an Ethereum JSON-RPC
 * endpoint — and only it — whether the contract exists on the named chain, whether its head
 * `head_index` is the proof's (tree_size, root_hash), whether the contract's own
 * `verifyInclusion` accepts the inclusion proof, and whether `tx_hash` is the anchoring
 * transaction in `block_number`. The same steps as the SDK's `chainchat verify`.
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { toHex, utf8 } from "./crypto/bytes";
import type { ProofObject } from "./crypto/proof";

const selector = (signature: string): string => toHex(keccak_256(utf8(signature)).slice(0, 4));
const HEAD = selector("head(uint256)");
const VERIFY_INCLUSION = selector("verifyInclusion(uint256,uint64,bytes32,bytes32[])");
const ANCHORED_TOPIC = toHex(keccak_256(utf8("Anchored(uint256,uint64,bytes32,uint256)")));

async function rpc(url: string, method: string, params: unknown[]): Promise<any> {
  const resp = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  if (!resp.ok) throw new Error(`the RPC endpoint answered HTTP ${resp.status}`);
  const body = await resp.json();
  if (body.error) throw new Error(`chain RPC error: ${body.error.message ?? JSON.stringify(body.error)}`);
  return body.result;
}

const word = (n: number | bigint): string => BigInt(n).toString(16).padStart(64, "0");

/** ABI encoding of verifyInclusion(headIndex, leafIndex, leafHash, proof). */
export function verifyInclusionCall(headIndex: number, leafIndex: number, leafHash: string, proof: string[]): string {
  return `0x${VERIFY_INCLUSION}${word(headIndex)}${word(leafIndex)}${leafHash}${word(4 * 32)}${word(proof.length)}${proof.join("")}`;
}

export interface ChainCheck {
  ok: boolean;
  /** What was confirmed, step by step (for the dialog). */
  checks: string[];
  detail: string;
}

export async function verifyOnChain(proof: ProofObject, leafHash: string, rpcUrl: string): Promise<ChainCheck> {
  const checks: string[] = [];
  const fail = (detail: string): ChainCheck => ({ ok: false, checks, detail });
  const { head_index, leaf_index, contract_address, inclusion_proof } = proof;
  if (head_index == null || leaf_index == null || !contract_address || !inclusion_proof) return fail("The proof is not anchored yet.");
  const chainId = parseInt(await rpc(rpcUrl, "eth_chainId", []), 16);
  if (proof.chain_id != null && chainId !== proof.chain_id) return fail(`The RPC endpoint serves chain ${chainId}, the proof names chain ${proof.chain_id}.`);
  const code: string = await rpc(rpcUrl, "eth_getCode", [contract_address, "latest"]);
  if (!code || code === "0x") return fail(`There is no contract at ${contract_address} on chain ${chainId}.`);
  checks.push(`contract code present on chain ${chainId}`);

  const head: string = await rpc(rpcUrl, "eth_call", [{ to: contract_address, data: `0x${HEAD}${word(head_index)}` }, "latest"]);
  const words = (head ?? "").replace(/^0x/, "");
  if (words.length < 128) return fail(`The contract has no tree head #${head_index}.`);
  const treeSize = parseInt(words.slice(0, 64), 16);
  const root = words.slice(64, 128).toLowerCase();
  if (treeSize !== proof.tree_size || root !== proof.root_hash) {
    return fail(`Head #${head_index} on chain is (${treeSize}, ${root.slice(0, 16)}…), which does NOT match the proof.`);
  }
  checks.push(`head #${head_index} on chain is (${treeSize}, ${root.slice(0, 16)}…), as in the proof`);

  const verdict: string = await rpc(rpcUrl, "eth_call", [{ to: contract_address, data: verifyInclusionCall(head_index, leaf_index, leafHash, inclusion_proof) }, "latest"]);
  if (!verdict || BigInt(verdict) !== 1n) return fail("The contract's verifyInclusion rejected the inclusion proof.");
  checks.push("the contract's verifyInclusion accepts the inclusion proof");

  if (proof.tx_hash) {
    const receipt = await rpc(rpcUrl, "eth_getTransactionReceipt", [proof.tx_hash]);
    const block = receipt ? parseInt(receipt.blockNumber, 16) : null;
    const anchoredHere = (receipt?.logs ?? []).some(
      (log: { address: string; topics: string[] }) =>
        log.address.toLowerCase() === contract_address.toLowerCase() && log.topics[0] === `0x${ANCHORED_TOPIC}` && log.topics[1] === `0x${word(head_index)}`,
    );
    if (!receipt || receipt.status !== "0x1" || !anchoredHere || (proof.block_number != null && block !== proof.block_number)) {
      return fail(`Transaction ${proof.tx_hash} did not anchor head #${head_index} in block ${proof.block_number}.`);
    }
    checks.push(`transaction ${proof.tx_hash.slice(0, 12)}… anchored head #${head_index} in block ${block}`);
  }
  return { ok: true, checks, detail: `Verified against chain ${chainId} through ${new URL(rpcUrl).host}.` };
}
