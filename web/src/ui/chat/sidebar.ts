/**
 * The left column: find people (and start a conversation or a group), then the conversations,
 * most recently active first, with their last message and unread count.
 */
import type { ConversationSummary, Messenger } from "../../messenger";
import { clear, errorBox, h, messageOf, uid } from "../dom";
import { conversationTitle, sortedConversations } from "./select";
import type { ChatState } from "./store";

export interface SidebarActions {
  /** A conversation was started (or the existing direct one returned): open it. */
  created(conv: ConversationSummary): void;
  newGroup(): void;
}

export class Sidebar {
  readonly list = h("ul", { class: "conv-list", "aria-label": "Conversation list" });
  readonly el: HTMLElement;

  constructor(
    private readonly messenger: Messenger,
    actions: SidebarActions,
  ) {
    this.el = h("aside", { class: "sidebar", "aria-label": "Conversations" }, this.searchBox(actions), h("h2", { class: "side-title" }, "Conversations"), this.list);
  }

  render(state: ChatState): void {
    const items = sortedConversations(state).map((c) => {
      const active = c.summary.conversation_id === state.activeId;
      const name = conversationTitle(c.summary, state.me, (u) => this.messenger.nameOf(u));
      const unread = active ? 0 : c.unread;
      return h(
        "li",
        null,
        h(
          "a",
          {
            href: `/c/${encodeURIComponent(c.summary.conversation_id)}`,
            "data-route": "",
            class: `conv${active ? " active" : ""}${unread ? " has-unread" : ""}`,
            "aria-current": active ? "page" : null,
            dataset: { conversationId: c.summary.conversation_id },
          },
          h("span", { class: "avatar", "aria-hidden": "true" }, name.slice(0, 1).toUpperCase()),
          h(
            "span",
            { class: "conv-text" },
            h("span", { class: "conv-name" }, name, c.summary.kind === "group" ? h("small", null, ` · ${c.summary.members.length} members`) : null),
            c.preview ? h("span", { class: "conv-preview" }, c.preview.text) : null,
          ),
          unread ? h("span", { class: "unread", "aria-label": `${unread} unread` }, String(unread)) : null,
        ),
      );
    });
    clear(this.list, items.length ? items : h("li", { class: "empty" }, "No conversations yet. Find someone above to start one."));
  }

  private async startWith(userId: string, actions: SidebarActions): Promise<void> {
    try {
      actions.created(await this.messenger.startConversation([userId]));
    } catch (err) {
      alert(messageOf(err));
    }
  }

  private searchBox(actions: SidebarActions): HTMLElement {
    const input = h("input", { type: "search", id: uid("people"), placeholder: "Name or e-mail", autocomplete: "off" });
    const results = h("ul", { class: "search-results", "aria-label": "People" });
    const err = errorBox();
    const run = async (): Promise<void> => {
      const q = input.value.trim();
      err.show(null);
      if (!q) return clear(results);
      try {
        const hits = await searchOthers(this.messenger, q);
        clear(
          results,
          hits.length
            ? hits.map((u) =>
                h(
                  "li",
                  null,
                  h("span", null, u.display_name),
                  h("button", { type: "button", class: "small", "aria-label": `Message ${u.display_name}`, onclick: () => void this.startWith(u.user_id, actions) }, "Message"),
                ),
              )
            : h("li", { class: "empty" }, "Nobody found."),
        );
      } catch (ex) {
        err.show(messageOf(ex));
      }
    };
    onTypingPause(input, run);
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        void run();
      }
    });
    const group = h("button", { type: "button", class: "small secondary new-group", onclick: () => actions.newGroup() }, "New group");
    return h("div", { class: "people" }, h("div", { class: "people-head" }, h("label", { for: input.id }, "Find people"), group), input, err, results);
  }
}

/** People matching `q`, without the user themself. */
export async function searchOthers(messenger: Messenger, q: string): Promise<{ user_id: string; display_name: string }[]> {
  return (await messenger.searchUsers(q)).filter((u) => u.user_id !== messenger.me.id);
}

/** Run `fn` a quarter second after the last keystroke in `input`. */
export function onTypingPause(input: HTMLInputElement, fn: () => Promise<void>): void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  input.addEventListener("input", () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void fn(), 250);
  });
}
