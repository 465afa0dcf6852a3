/** The proof dialog: what the ledger says about a message, checked in this browser. */
import type { ProofObject } from "../crypto/proof";
import type { ChatMessage, Messenger } from "../messenger";
import { anchorOf } from "./chat/proofs";
import { h, messageOf, modal } from "./dom";

function row(label: string, value: string | number | null | undefined, mono = true): HTMLElement[] {
  return [h("dt", null, label), h("dd", { class: mono ? "mono" : "" }, value === null || value === undefined ? "—" : String(value))];
}

export async function showProof(messenger: Messenger, msg: ChatMessage, onState: (state: ChatMessage["anchor"]) => void): Promise<void> {
  const status = h("p", { role: "status" }, "Fetching the proof…");
  const details = h("dl", { class: "proof" });
  const chainBox = h("div", { class: "chain-check" });
  const dialog = modal("Message proof", status, details, chainBox);
  dialog.classList.add("proof-dialog");
  try {
    const { proof, check, digest } = await messenger.proofOf(msg);
    const anchored = proof.status === "anchored";
    const state = anchorOf(proof.status, check);
    onState(state);
    status.className = check.ok ? "verified" : state === "invalid" ? "error" : "";
    status.textContent = check.ok
      ? anchored
        ? "✓ Verified in this browser: the message's digest is in the log entry, and the inclusion proof reaches the tree head anchored on chain."
        : "✓ The inclusion proof verifies; the tree head is not anchored on chain yet."
      : state === "invalid"
        ? `✗ The proof does not verify: ${check.reason}.`
        : "Pending: the ledger has not anchored this message yet.";
    details.append(
      ...row("Status", anchored ? "Anchored on chain" : "Pending", false),
      ...row("Message digest (computed here)", digest),
      ...row("Log entry", proof.entry ? `${proof.entry.kind} ${proof.entry.id}` : "not received by the ledger yet", !!proof.entry),
      ...row("Entry digest", proof.entry?.digest),
      ...row("Logged at", proof.entry?.at),
      ...row("Leaf hash", check.leafHash || null),
      ...row("Leaf index", proof.leaf_index),
      ...row("Tree size", proof.tree_size),
      ...row("Root hash", proof.root_hash),
      ...row("Inclusion proof", proof.inclusion_proof ? `${proof.inclusion_proof.length} hashes` : null, false),
      ...row("Head index", proof.head_index),
      ...row("Transaction", proof.tx_hash),
      ...row("Block", proof.block_number),
      ...row("Chain id", proof.chain_id),
      ...row("Contract", proof.contract_address),
    );
    if (anchored && check.ok) await chainCheck(messenger, proof, check.leafHash, chainBox, onState);
  } catch (err) {
    status.textContent = messageOf(err);
    status.className = "error";
  }
}

/** Ask the chain itself (the ledger's public RPC URL from /ledger/info), from this browser. */
async function chainCheck(messenger: Messenger, proof: ProofObject, leafHash: string, box: HTMLElement, onState: (state: ChatMessage["anchor"]) => void): Promise<void> {
  const [pin, rpcUrl] = await Promise.all([messenger.ledger.pin().catch(() => null), messenger.ledger.rpcUrl()]);
  const result = h("p", { role: "status", class: "chain-result" }, "Asking the chain…");
  const steps = h("ul", { class: "chain-steps" });
  const trusted = pin ? `Only the chain is trusted: contract ${pin.contract_address} on chain ${pin.chain_id} (pinned${pin.source === "first_use" ? " on first use" : ""}), through ${rpcUrl ?? "no RPC URL"}.` : "";
  box.append(h("h3", null, "On-chain check"), h("p", { class: "hint" }, trusted), result, steps);
  const v = await messenger.ledger.verify(proof, leafHash);
  for (const step of v.checks) steps.append(h("li", null, `✓ ${step}`));
  result.textContent = v.ok ? `✓ ${v.detail}` : `✗ ${v.detail}`;
  result.className = `chain-result ${v.ok ? "verified" : "error"}`;
  result.dataset.chain = v.ok ? "verified" : v.code === "chain_unreachable" || v.code === "no_rpc" ? "unreachable" : "failed";
  if (v.code) result.dataset.code = v.code;
  if (!v.ok && result.dataset.chain === "failed") onState("invalid");
}
