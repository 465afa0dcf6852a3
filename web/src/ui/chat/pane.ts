/**
 * The right column: the open conversation's header, key banners, message list (in seq order,
 * one element per message, replaced in place when it changes), typing line and composer; or the
 * welcome text when none is open.
 */
import type { ChatMessage } from "../../messenger";
import { clear, h, messageOf } from "../dom";
import { typingUsers } from "./select";

export interface PaneHeader {
  title: string;
  kind: "direct" | "group";
  members: number;
  /** Peers to compare safety numbers with (none in notes to self). */
  peers: string[];
  safety(peers: string[]): void;
}

export class ConversationPane {
  readonly el = h("main", { class: "pane", "aria-label": "Conversation" });
  private list: HTMLOListElement | null = null;
  private typingLine: HTMLElement | null = null;
  private banners: HTMLElement | null = null;
  private elements = new Map<string, HTMLLIElement>();
  private typingTimer: ReturnType<typeof setTimeout> | null = null;

  empty(): void {
    clear(this.el, h("div", { class: "empty-pane" }, h("h2", null, "End-to-end encrypted messages"), h("p", null, "Pick a conversation, or find someone to write to. Every message is encrypted in this browser and anchored on chain.")));
    this.list = null;
  }

  alert(text: string): void {
    clear(this.el, h("p", { class: "error", role: "alert" }, text));
    this.list = null;
  }

  open(head: PaneHeader, composer: HTMLElement): void {
    if (this.typingTimer) clearTimeout(this.typingTimer);
    this.list = h("ol", { class: "messages", "aria-label": "Messages", "aria-live": "polite" });
    this.typingLine = h("div", { class: "typing", "aria-live": "polite" });
    this.banners = h("div", { class: "banners" });
    this.elements.clear();
    const sub = head.kind === "group" ? `Group · ${head.members} members` : "Direct conversation · end-to-end encrypted";
    const header = h(
      "header",
      { class: "conv-header" },
      h(
        "div",
        null,
        h("a", { href: "/", "data-route": "", class: "back", "aria-label": "Back to the conversation list" }, "←"),
        h("div", null, h("h2", { class: "conv-title" }, head.title), h("p", { class: "sub" }, sub)),
      ),
      h(
        "div",
        { class: "actions" },
        head.peers.length ? h("button", { type: "button", onclick: () => head.safety(head.peers) }, head.peers.length === 1 ? "Safety number" : "Safety numbers") : null,
      ),
    );
    clear(this.el, header, this.banners, h("div", { class: "scroller" }, this.list), this.typingLine, composer);
    this.list.append(h("li", { class: "loading" }, "Loading messages…"));
  }

  setTitle(title: string): void {
    const el = this.el.querySelector(".conv-title");
    if (el) el.textContent = title;
  }

  loadFailed(err: unknown): void {
    if (!this.list) return;
    const unsent = this.unsent();
    clear(this.list, h("li", { class: "error", role: "alert" }, messageOf(err)), unsent);
    this.elements.clear();
  }

  /** Draw the whole list: "Load earlier messages" first when there are more; messages not sent
   *  yet (or failed, with their Retry) stay at the end. */
  showMessages(messages: readonly ChatMessage[], draw: (m: ChatMessage) => HTMLLIElement, earlier: (() => void) | null): void {
    if (!this.list) return;
    const unsent = this.unsent();
    clear(this.list);
    this.elements.clear();
    if (earlier) this.list.append(h("li", { class: "earlier" }, h("button", { type: "button", class: "link", onclick: earlier }, "Load earlier messages")));
    if (messages.length === 0) this.list.append(h("li", { class: "empty" }, "No messages yet. Say hello — only the members can read it."));
    for (const m of messages) this.place(m, draw(m), false);
    this.list.append(...unsent);
    this.scrollToEnd();
  }

  private unsent(): HTMLElement[] {
    return [...(this.list?.querySelectorAll<HTMLElement>(":scope > li.sending, :scope > li.failed") ?? [])];
  }

  /** Insert or replace one message element at its place in seq order. */
  place(m: ChatMessage, el: HTMLLIElement, scroll = true): void {
    if (!this.list) return;
    this.list.querySelector(":scope > li.empty")?.remove();
    this.list.querySelector(":scope > li.loading")?.remove();
    const old = this.elements.get(m.id);
    if (old) old.replaceWith(el);
    else {
      const after = [...this.elements.values()].find((e) => Number(e.dataset.seq) > m.seq);
      if (after) this.list.insertBefore(el, after);
      else this.list.append(el);
    }
    this.elements.set(m.id, el);
    if (scroll) this.scrollToEnd();
  }

  /** A message not sent yet, at the end. */
  appendPending(el: HTMLElement): void {
    if (!this.list) return;
    this.list.querySelector(":scope > li.empty")?.remove();
    this.list.append(el);
    this.scrollToEnd();
  }

  /** "… is typing…" for the notices still fresh, drawn again when the next one runs out. */
  setTyping(typing: ReadonlyMap<string, number>, nameOf: (userId: string) => string): void {
    if (this.typingTimer) clearTimeout(this.typingTimer);
    const now = Date.now();
    const names = typingUsers(typing, now).map(nameOf);
    if (this.typingLine) this.typingLine.textContent = names.length === 0 ? "" : `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`;
    const next = Math.min(...[...typing.values()].filter((until) => until > now));
    if (names.length) this.typingTimer = setTimeout(() => this.setTyping(typing, nameOf), next - now + 10);
  }

  /** The box the banners go to; `setBanners` draws them only if it is still shown. */
  bannerBox(): HTMLElement | null {
    return this.banners;
  }

  setBanners(box: HTMLElement, notes: HTMLElement[]): void {
    if (this.banners === box) clear(box, notes);
  }

  private scrollToEnd(): void {
    const scroller = this.list?.parentElement;
    if (scroller) scroller.scrollTop = scroller.scrollHeight;
  }
}
