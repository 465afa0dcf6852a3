/** The proof dialog: what the ledger says about a message, checked in this browser. */
import { checkHeadOnChain } from "../chain";
import type { ChatMessage, Messenger } from "../messenger";
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
    const state = !check.ok && check.reason !== "entry not yet in the log" ? "invalid" : anchored ? (check.ok ? "verified" : "anchored") : "pending";
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
      ...row("Log entry", `${proof.entry.kind} ${proof.entry.id}`),
      ...row("Entry digest", proof.entry.digest),
      ...row("Logged at", proof.entry.at),
      ...row("Leaf hash", check.leafHash),
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
    if (anchored) {
      const info = await messenger.ledgerInfo().catch(() => null);
      const rpcUrl: string | null = info?.rpc_url_public ?? null;
      if (rpcUrl) {
        const result = h("p", { role: "status" });
        const button = h(
          "button",
          {
            type: "button",
            onclick: async () => {
              button.disabled = true;
              result.textContent = "Asking the chain…";
              try {
                const c = await checkHeadOnChain(proof, rpcUrl);
                result.textContent = (c.ok ? "✓ " : "✗ ") + c.detail;
                result.className = c.ok ? "verified" : "error";
              } catch (err) {
                result.textContent = `Could not reach the chain at ${rpcUrl}: ${messageOf(err)}`;
                result.className = "error";
              } finally {
                button.disabled = false;
              }
            },
          },
          "Check the tree head on chain",
        );
        chainBox.append(h("p", { class: "hint" }, `Independent check against ${rpcUrl} (only the chain is trusted).`), button, result);
      }
    }
  } catch (err) {
    status.textContent = messageOf(err);
    status.className = "error";
  }
}
