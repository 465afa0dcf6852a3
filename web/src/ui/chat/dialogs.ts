/** The chat screen's dialogs: a new group, and the safety numbers with the peers of a conversation. */
import { formatSafetyNumber } from "../../crypto/safety";
import type { ConversationSummary, Messenger } from "../../messenger";
import { clear, errorBox, field, h, messageOf, modal } from "../dom";
import { onTypingPause, searchOthers } from "./sidebar";

/** Name a group and pick its members; `created` gets the new conversation. */
export function groupDialog(messenger: Messenger, created: (conv: ConversationSummary) => void): void {
  const title = h("input", { type: "text", maxlength: "200", required: true });
  const q = h("input", { type: "search", autocomplete: "off", placeholder: "Name or e-mail" });
  const hits = h("ul", { class: "search-results", "aria-label": "People to add" });
  const chosen = new Map<string, string>();
  const chips = h("ul", { class: "chips", "aria-label": "Members" });
  const err = errorBox();
  const renderChips = (): void =>
    clear(
      chips,
      [...chosen].map(([id, name]) => h("li", null, name, h("button", { type: "button", class: "icon", "aria-label": `Remove ${name}`, onclick: () => (chosen.delete(id), renderChips()) }, "×"))),
    );
  onTypingPause(q, async () => {
    if (!q.value.trim()) return clear(hits);
    try {
      const found = await searchOthers(messenger, q.value.trim());
      clear(
        hits,
        found.map((u) =>
          h("li", null, h("span", null, u.display_name), h("button", { type: "button", class: "small", "aria-label": `Add ${u.display_name}`, onclick: () => (chosen.set(u.user_id, u.display_name), renderChips()) }, "Add")),
        ),
      );
    } catch (ex) {
      err.show(messageOf(ex));
    }
  });
  const form = h(
    "form",
    {
      onsubmit: async (e: Event) => {
        e.preventDefault();
        if (chosen.size === 0) return err.show("Add at least one member.");
        try {
          const conv = await messenger.startConversation([...chosen.keys()], title.value.trim() || undefined);
          dialog.close();
          created(conv);
        } catch (ex) {
          err.show(messageOf(ex));
        }
      },
    },
    field("Group name", title),
    field("Add people", q),
    hits,
    chips,
    err,
    h("button", { type: "submit", class: "primary" }, "Create group"),
  );
  const dialog = modal("New group", form);
  title.focus();
}

/** The safety number with each peer, to compare over another channel; `verified` after a peer is marked. */
export async function safetyDialog(messenger: Messenger, peers: string[], verified: () => void): Promise<void> {
  const body = h("div", { class: "safety" }, h("p", { role: "status" }, "Computing…"));
  modal(peers.length === 1 ? `Safety number with ${messenger.nameOf(peers[0]!)}` : "Safety numbers", body);
  const sections: HTMLElement[] = [];
  for (const peer of peers) {
    try {
      sections.push(await safetySection(messenger, peer, peers.length > 1, verified));
    } catch (err) {
      sections.push(h("p", { class: "error" }, messageOf(err)));
    }
  }
  clear(body, sections);
}

async function safetySection(messenger: Messenger, peer: string, titled: boolean, verified: () => void): Promise<HTMLElement> {
  const sn = await messenger.safetyNumberWith(peer);
  const pin = await messenger.pinOf(peer);
  const name = messenger.nameOf(peer);
  const status = h("p", { class: "hint" }, pin?.verified ? `You marked ${name} as verified.` : `Compare these digits with ${name} in person or over a call. If they match, nobody is intercepting your messages.`);
  const mark = async (e: Event): Promise<void> => {
    await messenger.acceptKeys(peer, true);
    (e.target as HTMLButtonElement).disabled = true;
    status.textContent = `${name} is marked as verified.`;
    verified();
  };
  return h(
    "section",
    null,
    titled ? h("h3", null, name) : null,
    h("p", { class: "safety-number mono", "aria-label": `Safety number with ${name}` }, formatSafetyNumber(sn.number)),
    status,
    h("details", null, h("summary", null, "Key ids"), h("p", { class: "mono small" }, `You: ${sn.mine.join(", ")}`), h("p", { class: "mono small" }, `${name}: ${sn.theirs.join(", ")}`)),
    h("button", { type: "button", onclick: mark }, "Mark as verified"),
  );
}
