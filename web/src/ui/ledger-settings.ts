/** Settings → "Trusted ledger": the pinned (chain id, contract), the largest verified tree head,
 *  and the chain RPC URL this browser asks (the user's; the server's public one by default). */
import type { Messenger } from "../messenger";
import { clear, errorBox, field, h, messageOf } from "./dom";

export async function ledgerPanel(messenger: Messenger): Promise<HTMLElement> {
  const panel = h("section", { class: "panel", "aria-labelledby": "set-ledger" });
  const render = async (): Promise<void> => {
    const title = h("h2", { id: "set-ledger" }, "Trusted ledger");
    try {
      const pin = await messenger.ledger.pin();
      const state = await messenger.ledger.state();
      const rpc = await messenger.ledger.rpcUrl();
      const input = h("input", { type: "url", value: state.rpcUrl ?? "", placeholder: rpc ?? "https://…" });
      const err = errorBox();
      clear(
        panel,
        title,
        h("p", null, "Proofs are only accepted from this contract on this chain; a proof naming another one is refused (ledger_mismatch)."),
        h(
          "dl",
          { class: "proof" },
          h("dt", null, "Chain id"), h("dd", { class: "mono", "data-ledger": "chain" }, String(pin.chain_id)),
          h("dt", null, "Contract"), h("dd", { class: "mono", "data-ledger": "contract" }, pin.contract_address),
          h("dt", null, "Pinned"), h("dd", null, pin.source === "config" ? "by this build's configuration" : "on first use"),
          h("dt", null, "Largest verified tree head"), h("dd", { class: "mono" }, state.head ? `size ${state.head.tree_size} · ${state.head.root_hash.slice(0, 16)}…` : "none yet"),
          h("dt", null, "Chain RPC"), h("dd", { class: "mono" }, rpc ?? "none"),
        ),
        h(
          "form",
          {
            onsubmit: async (e: Event) => {
              e.preventDefault();
              try {
                await messenger.ledger.setRpcUrl(input.value.trim() || null);
                await render();
              } catch (ex) {
                err.show(messageOf(ex));
              }
            },
          },
          field("Your chain RPC URL (empty: the server's public one)", input),
          err,
          h("button", { type: "submit", class: "secondary" }, "Save RPC URL"),
        ),
      );
    } catch (ex) {
      clear(panel, title, h("p", { class: "error" }, messageOf(ex)));
    }
  };
  await render();
  return panel;
}
