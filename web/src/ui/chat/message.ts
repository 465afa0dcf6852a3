/**
 * One message of the open conversation: sender and time, the decrypted body (a text node, never
 * markup), the anchor badge that opens its proof, the receipt and the delete button; and the
 * "Sending…" placeholder shown while a message is sealed and sent.
 */
import type { ChatMessage, FileInfo, Messenger } from "../../messenger";
import { clear, formatTime, h, icon, messageOf } from "../dom";
import { showProof } from "../proof";
import { fileCard } from "./file-card";
import { receiptText } from "./select";
import type { Conversation } from "./store";

const LEGACY_ENVELOPE_TITLE =
  "Sent in the older envelope format (v1), which does not commit to its key: the signature cannot prove every recipient read this same text.";

const BADGE_TEXT: Record<ChatMessage["anchor"], string> = {
  pending: "Pending",
  anchored: "Anchored",
  verified: "Anchored ✓",
  invalid: "Proof invalid",
};

const BADGE_TITLE: Record<ChatMessage["anchor"], string> = {
  pending: "Not yet anchored on chain",
  anchored: "Anchored on chain",
  verified: "Anchored on chain; the inclusion proof was verified in this browser",
  invalid: "The ledger's proof for this message does not verify",
};

export interface MessageContext {
  mine: boolean;
  senderName: string;
  /** "Sent", "Read", "Read by …" for the own messages; null for others'. */
  receipt: string | null;
  canDelete: boolean;
  /** The card of a file message (kept across redraws by the caller). */
  fileCard: () => HTMLElement;
  showProof: () => void;
  remove: () => void;
}

function content(m: ChatMessage, ctx: MessageContext): Node {
  if (m.deleted) return h("p", { class: "deleted" }, "This message was deleted.");
  if (m.error) return h("p", { class: `undecryptable ${m.errorCode ?? ""}` }, icon("lock"), " ", m.error);
  if (m.body?.type === "text") return h("p", { class: "text" }, String(m.body.text ?? ""));
  if (m.body?.type === "file") return ctx.fileCard();
  return h("p", { class: "undecryptable" }, `Unsupported message type "${String(m.body?.type)}".`);
}

export function messageElement(m: ChatMessage, ctx: MessageContext): HTMLLIElement {
  const badge = h(
    "button",
    {
      type: "button",
      class: `badge ${m.anchor}`,
      dataset: { anchor: m.anchor },
      title: BADGE_TITLE[m.anchor],
      "aria-label": `${BADGE_TEXT[m.anchor]} — show the proof of this message`,
      onclick: ctx.showProof,
    },
    BADGE_TEXT[m.anchor],
  );
  const legacy = m.body && !m.error && !m.deleted && !m.keyCommitting ? h("span", { class: "legacy-envelope", title: LEGACY_ENVELOPE_TITLE }, "not key-committing") : null;
  const del = ctx.canDelete ? h("button", { type: "button", class: "link small delete", "aria-label": "Delete this message", onclick: ctx.remove }, "Delete") : null;
  return h(
    "li",
    { class: `message${ctx.mine ? " mine" : ""}`, dataset: { messageId: m.id, seq: String(m.seq), sender: m.senderId } },
    h("div", { class: "meta" }, h("span", { class: "sender" }, ctx.senderName), " ", h("time", { datetime: m.createdAt }, formatTime(m.createdAt))),
    h("div", { class: "bubble" }, content(m, ctx)),
    h("div", { class: "foot" }, badge, legacy, ctx.receipt ? h("span", { class: "receipt" }, ctx.receipt) : null, del),
  );
}

export interface MessageHooks {
  conversation(m: ChatMessage): Conversation | undefined;
  /** The message as the state holds it now (its badge may have moved since it was drawn). */
  current(m: ChatMessage): ChatMessage | null;
  setAnchor(m: ChatMessage, anchor: ChatMessage["anchor"]): void;
  remove(m: ChatMessage): void;
}

/** The elements of the messages, each file card kept across redraws (badge, receipts) so its
 *  download, preview and progress live on. */
export class MessageViews {
  private fileCards = new Map<string, HTMLElement>();

  constructor(
    private readonly messenger: Messenger,
    private readonly hooks: MessageHooks,
  ) {}

  element(m: ChatMessage): HTMLLIElement {
    const me = this.messenger.me;
    const mine = m.senderId === me.id;
    const conv = this.hooks.conversation(m);
    const nameOf = (u: string): string => this.messenger.nameOf(u);
    return messageElement(m, {
      mine,
      senderName: mine ? "You" : nameOf(m.senderId),
      receipt: mine && !m.deleted && conv ? receiptText(conv, m, me.id, nameOf) : null,
      canDelete: !m.deleted && (mine || me.role === "admin"),
      fileCard: () => this.fileCard(m),
      showProof: () =>
        void showProof(this.messenger, m, (state) => {
          const now = this.hooks.current(m)?.anchor ?? m.anchor;
          if (state !== now && !(state === "pending" && now !== "pending")) this.hooks.setAnchor(m, state);
        }),
      remove: () => this.hooks.remove(m),
    });
  }

  private fileCard(m: ChatMessage): HTMLElement {
    let card = this.fileCards.get(m.id);
    if (!card) this.fileCards.set(m.id, (card = fileCard(this.messenger, (m.body?.file ?? m.body) as FileInfo)));
    return card;
  }
}

/** The optimistic copy of a message being sent: "Sending…", then "Not sent: …" with Retry. */
export function pendingMessage(text: string): HTMLLIElement & { fail(err: unknown, retry: () => void): void } {
  const el = h(
    "li",
    { class: "message mine sending", dataset: { state: "sending" } },
    h("div", { class: "meta" }, h("span", { class: "sender" }, "You")),
    h("div", { class: "bubble" }, h("p", { class: "text" }, text)),
    h("div", { class: "foot" }, h("span", { class: "receipt", role: "status" }, "Sending…")),
  ) as HTMLLIElement & { fail(err: unknown, retry: () => void): void };
  el.fail = (err, retry) => {
    el.dataset.state = "failed";
    el.classList.replace("sending", "failed");
    clear(
      el.querySelector(".foot") as HTMLElement,
      h("span", { class: "error", role: "alert" }, `Not sent: ${messageOf(err)}`),
      h("button", { type: "button", class: "link small", onclick: () => (el.remove(), retry()) }, "Retry"),
    );
  };
  return el;
}
