/**
 * The messenger screen: conversation list (with unread counts and people search) on the left,
 * the open conversation on the right (live messages, typing, receipts, files, proofs, safety
 * numbers, key-change warnings).
 */
import type { ApiClient } from "../api";
import { TrustError, type Messenger, type ChatMessage, type ConversationSummary, type FileInfo, type MessageView, type Transport } from "../messenger";
import type { LiveConnection, ServerFrame } from "../ws";
import { clear, errorBox, field, formatBytes, formatTime, h, icon, messageOf, modal, uid } from "./dom";
import { showProof } from "./proof";
import { formatSafetyNumber } from "../crypto/safety";

interface ConvState {
  summary: ConversationSummary;
  messages: ChatMessage[];
  byId: Map<string, ChatMessage>;
  loaded: boolean;
  loading: Promise<void> | null;
  hasEarlier: boolean;
  readBy: Map<string, number>;
  typing: Map<string, ReturnType<typeof setTimeout>>;
  unread: number;
  /** The last message, decrypted here, for the conversation list. */
  preview: { seq: number; text: string } | null;
}

const PAGE = 100;
// Images the browser shows from a blob: URL (no SVG: it could carry script in other contexts).
const PREVIEWABLE = /^image\/(png|jpeg|gif|webp|avif|bmp)$/;
const MAX_PREVIEW_BYTES = 10 * 1024 * 1024;
const FRESH_MS = 10_000;
const TYPING_SHOW_MS = 5000;
const TYPING_SEND_MS = 3000;

export class ChatScreen {
  private convs = new Map<string, ConvState>();
  private activeId: string | null = null;
  private sidebarList = h("ul", { class: "conv-list", "aria-label": "Conversation list" });
  private pane = h("main", { class: "pane", "aria-label": "Conversation" });
  private layout = h("div", { class: "layout" });
  private previewsLoading = false;
  private messageEls = new Map<string, HTMLLIElement>();
  private fileCards = new Map<string, HTMLElement>();
  private messageList: HTMLOListElement | null = null;
  private typingLine: HTMLElement | null = null;
  private bannerBox: HTMLElement | null = null;
  private lastTypingSent = 0;
  private unsubscribers: (() => void)[] = [];
  private proofQueue: ChatMessage[] = [];
  private proofPolls = new Map<string, number>();
  private proofWorkers = 0;

  constructor(
    private readonly root: HTMLElement,
    private readonly api: ApiClient,
    private readonly messenger: Messenger,
    private readonly live: LiveConnection,
    private readonly navigate: (path: string) => void,
  ) {}

  async mount(activeId: string | null): Promise<void> {
    const search = this.searchBox();
    clear(this.layout, h("aside", { class: "sidebar", "aria-label": "Conversations" }, search, h("h2", { class: "side-title" }, "Conversations"), this.sidebarList), this.pane);
    clear(this.root, this.layout);
    this.unsubscribers.push(
      this.live.onFrame((f) => void this.onFrame(f)),
      this.live.onState((s) => {
        if (s === "ready") void this.catchUp();
      }),
      this.messenger.keyChanged.on((c) => {
        if (this.activeId && this.convs.get(this.activeId)?.summary.members.includes(c.userId)) void this.renderBanner();
      }),
      this.messenger.namesChanged.on(() => {
        this.renderSidebar();
        if (this.activeId) this.renderHeaderTitle();
      }),
    );
    const onFocus = (): void => void this.markRead();
    window.addEventListener("focus", onFocus);
    this.unsubscribers.push(() => window.removeEventListener("focus", onFocus));
    this.renderEmptyPane();
    try {
      await this.loadConversations();
    } catch (err) {
      this.pane.replaceChildren(h("p", { class: "error", role: "alert" }, messageOf(err)));
    }
    if (activeId) await this.open(activeId);
  }

  unmount(): void {
    for (const u of this.unsubscribers) u();
    this.unsubscribers = [];
  }

  /** Route change within the chat screen. */
  async show(activeId: string | null): Promise<void> {
    if (activeId) await this.open(activeId);
    else {
      this.activeId = null;
      this.layout.classList.remove("has-active");
      this.renderSidebar();
      this.renderEmptyPane();
    }
  }

  // ------------------------------------------------------------------ conversations

  private title(s: ConversationSummary): string {
    if (s.title) return s.title;
    const others = s.members.filter((m) => m !== this.messenger.me.id);
    if (others.length === 0) return "Notes to self";
    return others.map((m) => this.messenger.nameOf(m)).join(", ");
  }

  private upsert(summary: ConversationSummary): ConvState {
    let st = this.convs.get(summary.conversation_id);
    if (!st) {
      st = { summary, messages: [], byId: new Map(), loaded: false, loading: null, hasEarlier: false, readBy: new Map(), typing: new Map(), unread: summary.unread_count ?? 0, preview: null };
      this.convs.set(summary.conversation_id, st);
    } else {
      st.summary = { ...st.summary, ...summary };
      if (summary.unread_count !== undefined && summary.conversation_id !== this.activeId) st.unread = summary.unread_count;
    }
    return st;
  }

  private async loadConversations(): Promise<void> {
    const list = await this.messenger.conversations();
    for (const s of list) this.upsert(s);
    this.renderSidebar();
    void this.loadPreviews();
  }

  /** Fetch and decrypt the last message of each conversation whose preview is missing or old. */
  private async loadPreviews(): Promise<void> {
    if (this.previewsLoading) return;
    this.previewsLoading = true;
    try {
      for (const st of this.sorted().slice(0, 50)) {
        const last = st.summary.last_seq ?? 0;
        if (last <= 0 || (st.preview && st.preview.seq >= last)) continue;
        const local = st.messages.at(-1);
        if (local && local.seq >= last) {
          this.setPreview(st, local);
          continue;
        }
        try {
          const [view] = await this.messenger.history(st.summary.conversation_id, { before_seq: last + 1, limit: 1 });
          if (view) this.setPreview(st, await this.messenger.open(view, st.summary.conversation_id));
        } catch {
          /* no preview: the list still works */
        }
        this.renderSidebar();
      }
    } finally {
      this.previewsLoading = false;
    }
  }

  private previewText(m: ChatMessage): string {
    const who = m.senderId === this.messenger.me.id ? "You: " : "";
    if (m.deleted) return `${who}message deleted`;
    if (m.errorCode === "wrong_conversation" || m.errorCode === "bad_signature") return `${who}invalid message`;
    if (m.error) return `${who}encrypted message (cannot be read on this device)`;
    if (m.body?.type === "text") return `${who}${String(m.body.text ?? "").replace(/\s+/g, " ").slice(0, 120)}`;
    if (m.body?.type === "file") return `${who}file ${String(((m.body.file ?? m.body) as FileInfo).name ?? "")}`;
    return `${who}message`;
  }

  private setPreview(st: ConvState, m: ChatMessage): void {
    if (st.preview && st.preview.seq > m.seq) return;
    st.preview = { seq: m.seq, text: this.previewText(m) };
  }

  private sorted(): ConvState[] {
    const key = (c: ConvState): string => c.summary.last_message_at ?? c.messages.at(-1)?.createdAt ?? c.summary.created_at ?? "";
    return [...this.convs.values()].sort((a, b) => key(b).localeCompare(key(a)));
  }

  private renderSidebar(): void {
    const items = this.sorted().map((c) => {
      const active = c.summary.conversation_id === this.activeId;
      const name = this.title(c.summary);
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
    clear(this.sidebarList, items.length ? items : h("li", { class: "empty" }, "No conversations yet. Find someone above to start one."));
  }

  private searchBox(): HTMLElement {
    const input = h("input", { type: "search", id: uid("people"), placeholder: "Name or e-mail", autocomplete: "off" });
    const results = h("ul", { class: "search-results", "aria-label": "People" });
    const err = errorBox();
    let timer: ReturnType<typeof setTimeout> | null = null;
    const run = async (): Promise<void> => {
      const q = input.value.trim();
      err.show(null);
      if (!q) return clear(results);
      try {
        const hits = (await this.messenger.searchUsers(q)).filter((u) => u.user_id !== this.messenger.me.id);
        clear(
          results,
          hits.length
            ? hits.map((u) =>
                h(
                  "li",
                  null,
                  h("span", null, u.display_name),
                  h("button", { type: "button", class: "small", "aria-label": `Message ${u.display_name}`, onclick: () => void this.startWith([u.user_id]) }, "Message"),
                ),
              )
            : h("li", { class: "empty" }, "Nobody found."),
        );
      } catch (ex) {
        err.show(messageOf(ex));
      }
    };
    input.addEventListener("input", () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => void run(), 250);
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        void run();
      }
    });
    const group = h("button", { type: "button", class: "small secondary new-group", onclick: () => this.groupDialog() }, "New group");
    return h("div", { class: "people" }, h("div", { class: "people-head" }, h("label", { for: input.id }, "Find people"), group), input, err, results);
  }

  private groupDialog(): void {
    const title = h("input", { type: "text", maxlength: "200", required: true });
    const q = h("input", { type: "search", autocomplete: "off", placeholder: "Name or e-mail" });
    const hits = h("ul", { class: "search-results", "aria-label": "People to add" });
    const chosen = new Map<string, string>();
    const chips = h("ul", { class: "chips", "aria-label": "Members" });
    const err = errorBox();
    const renderChips = (): void =>
      clear(
        chips,
        [...chosen].map(([id, name]) =>
          h("li", null, name, h("button", { type: "button", class: "icon", "aria-label": `Remove ${name}`, onclick: () => (chosen.delete(id), renderChips()) }, "×")),
        ),
      );
    let timer: ReturnType<typeof setTimeout> | null = null;
    q.addEventListener("input", () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(async () => {
        if (!q.value.trim()) return clear(hits);
        try {
          const found = (await this.messenger.searchUsers(q.value.trim())).filter((u) => u.user_id !== this.messenger.me.id);
          clear(
            hits,
            found.map((u) =>
              h("li", null, h("span", null, u.display_name), h("button", { type: "button", class: "small", "aria-label": `Add ${u.display_name}`, onclick: () => (chosen.set(u.user_id, u.display_name), renderChips()) }, "Add")),
            ),
          );
        } catch (ex) {
          err.show(messageOf(ex));
        }
      }, 250);
    });
    const form = h(
      "form",
      {
        onsubmit: async (e: Event) => {
          e.preventDefault();
          if (chosen.size === 0) return err.show("Add at least one member.");
          try {
            const conv = await this.messenger.startConversation([...chosen.keys()], title.value.trim() || undefined);
            dialog.close();
            this.upsert(conv);
            this.renderSidebar();
            this.navigate(`/c/${encodeURIComponent(conv.conversation_id)}`);
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

  private async startWith(memberIds: string[]): Promise<void> {
    try {
      const conv = await this.messenger.startConversation(memberIds);
      this.upsert(conv);
      this.renderSidebar();
      this.navigate(`/c/${encodeURIComponent(conv.conversation_id)}`);
    } catch (err) {
      alert(messageOf(err));
    }
  }

  // ------------------------------------------------------------------ the open conversation

  private renderEmptyPane(): void {
    clear(this.pane, h("div", { class: "empty-pane" }, h("h2", null, "End-to-end encrypted messages"), h("p", null, "Pick a conversation, or find someone to write to. Every message is encrypted in this browser and anchored on chain.")));
    this.messageList = null;
  }

  private async open(id: string): Promise<void> {
    let st = this.convs.get(id);
    if (!st) {
      await this.loadConversations().catch(() => undefined);
      st = this.convs.get(id);
    }
    if (!st) {
      clear(this.pane, h("p", { class: "error", role: "alert" }, "This conversation does not exist or you are not a member."));
      return;
    }
    this.activeId = id;
    this.layout.classList.add("has-active");
    st.unread = 0;
    this.renderSidebar();
    this.renderPane(st);
    await this.ensureLoaded(st);
    if (this.activeId !== id) return;
    this.renderMessages(st);
    void this.markRead();
    void this.renderBanner();
  }

  private renderHeaderTitle(): void {
    const st = this.activeId ? this.convs.get(this.activeId) : null;
    const el = this.pane.querySelector(".conv-title");
    if (st && el) el.textContent = this.title(st.summary);
  }

  private renderPane(st: ConvState): void {
    const s = st.summary;
    const peers = s.members.filter((m) => m !== this.messenger.me.id);
    const composer = this.composer(st);
    this.messageList = h("ol", { class: "messages", "aria-label": "Messages", "aria-live": "polite" });
    this.typingLine = h("div", { class: "typing", "aria-live": "polite" });
    this.bannerBox = h("div", { class: "banners" });
    this.messageEls.clear();
    const header = h(
      "header",
      { class: "conv-header" },
      h(
        "div",
        null,
        h("a", { href: "/", "data-route": "", class: "back", "aria-label": "Back to the conversation list" }, "←"),
        h("div", null, h("h2", { class: "conv-title" }, this.title(s)), h("p", { class: "sub" }, s.kind === "group" ? `Group · ${s.members.length} members` : "Direct conversation · end-to-end encrypted")),
      ),
      h(
        "div",
        { class: "actions" },
        peers.length
          ? h("button", { type: "button", onclick: () => void this.safetyDialog(peers) }, peers.length === 1 ? "Safety number" : "Safety numbers")
          : null,
      ),
    );
    clear(this.pane, header, this.bannerBox, h("div", { class: "scroller" }, this.messageList), this.typingLine, composer);
    this.messageList.append(h("li", { class: "loading" }, "Loading messages…"));
  }

  private async ensureLoaded(st: ConvState): Promise<void> {
    if (st.loaded) return;
    st.loading ??= (async () => {
      const views = await this.messenger.history(st.summary.conversation_id, { limit: PAGE });
      st.hasEarlier = views.length >= PAGE;
      await this.ingest(st, views);
      await this.catchUpOne(st); // whatever arrived meanwhile
      st.loaded = true;
    })();
    try {
      await st.loading;
    } catch (err) {
      st.loading = null;
      if (this.messageList) clear(this.messageList, h("li", { class: "error", role: "alert" }, messageOf(err)));
      throw err;
    }
  }

  private async ingest(st: ConvState, views: MessageView[]): Promise<ChatMessage[]> {
    const fresh = views.filter((v) => !st.byId.has(v.message_id));
    const opened = await Promise.all(fresh.map((v) => this.messenger.open(v, st.summary.conversation_id)));
    const added: ChatMessage[] = [];
    for (const m of opened) {
      if (st.byId.has(m.id)) continue;
      st.byId.set(m.id, m);
      st.messages.push(m);
      added.push(m);
    }
    st.messages.sort((a, b) => a.seq - b.seq);
    const last = st.messages.at(-1);
    if (last) this.setPreview(st, last);
    for (const m of added.slice(-40)) this.scheduleProof(m);
    return added;
  }

  private async catchUpOne(st: ConvState): Promise<ChatMessage[]> {
    const added: ChatMessage[] = [];
    for (let i = 0; i < 20; i++) {
      const after = st.messages.at(-1)?.seq;
      if (after === undefined) break;
      const views = await this.messenger.history(st.summary.conversation_id, { after_seq: after, limit: PAGE });
      added.push(...(await this.ingest(st, views)));
      if (views.length < PAGE) break;
    }
    return added;
  }

  /** After a reconnect: refresh the list and fetch what was missed in loaded conversations. */
  private async catchUp(): Promise<void> {
    await this.loadConversations().catch(() => undefined);
    for (const st of this.convs.values()) {
      if (!st.loaded) continue;
      const added = await this.catchUpOne(st).catch(() => []);
      if (st.summary.conversation_id === this.activeId) for (const m of added) this.placeMessage(st, m);
    }
    void this.markRead();
  }

  private renderMessages(st: ConvState): void {
    if (!this.messageList) return;
    clear(this.messageList);
    this.messageEls.clear();
    if (st.hasEarlier) {
      const more = h("button", { type: "button", class: "link", onclick: () => void this.loadEarlier(st) }, "Load earlier messages");
      this.messageList.append(h("li", { class: "earlier" }, more));
    }
    if (st.messages.length === 0) this.messageList.append(h("li", { class: "empty" }, "No messages yet. Say hello — only the members can read it."));
    for (const m of st.messages) this.placeMessage(st, m, false);
    this.scrollToEnd();
  }

  private async loadEarlier(st: ConvState): Promise<void> {
    const first = st.messages[0]?.seq;
    if (first === undefined) return;
    const views = await this.messenger.history(st.summary.conversation_id, { before_seq: first, limit: PAGE });
    st.hasEarlier = views.length >= PAGE;
    await this.ingest(st, views);
    if (st.summary.conversation_id === this.activeId) this.renderMessages(st);
  }

  private scrollToEnd(): void {
    const scroller = this.messageList?.parentElement;
    if (scroller) scroller.scrollTop = scroller.scrollHeight;
  }

  /** Insert or replace one message element at its place in seq order. */
  private placeMessage(st: ConvState, m: ChatMessage, scroll = true): void {
    if (!this.messageList || st.summary.conversation_id !== this.activeId) return;
    this.messageList.querySelector(":scope > li.empty")?.remove();
    this.messageList.querySelector(":scope > li.loading")?.remove();
    const el = this.messageElement(st, m);
    const old = this.messageEls.get(m.id);
    if (old) old.replaceWith(el);
    else {
      const after = [...this.messageEls.values()].find((e) => Number(e.dataset.seq) > m.seq);
      if (after) this.messageList.insertBefore(el, after);
      else this.messageList.append(el);
    }
    this.messageEls.set(m.id, el);
    if (scroll) this.scrollToEnd();
  }

  private messageElement(st: ConvState, m: ChatMessage): HTMLLIElement {
    const mine = m.senderId === this.messenger.me.id;
    const content: (Node | string)[] = [];
    if (m.deleted) content.push(h("p", { class: "deleted" }, "This message was deleted."));
    else if (m.error) content.push(h("p", { class: `undecryptable ${m.errorCode ?? ""}` }, icon("lock"), " ", m.error));
    else if (m.body?.type === "text") content.push(h("p", { class: "text" }, String(m.body.text ?? "")));
    else if (m.body?.type === "file") {
      // Kept across re-renders (badge, receipts): its download, preview and progress live on.
      let card = this.fileCards.get(m.id);
      if (!card) this.fileCards.set(m.id, (card = this.fileCard((m.body.file ?? m.body) as FileInfo)));
      content.push(card);
    }
    else content.push(h("p", { class: "undecryptable" }, `Unsupported message type "${String(m.body?.type)}".`));
    const badge = h(
      "button",
      {
        type: "button",
        class: `badge ${m.anchor}`,
        dataset: { anchor: m.anchor },
        title: BADGE_TITLE[m.anchor],
        "aria-label": `${BADGE_TEXT[m.anchor]} — show the proof of this message`,
        onclick: () =>
          void showProof(this.messenger, m, (state) => {
            if (state !== m.anchor && !(state === "pending" && m.anchor !== "pending")) {
              m.anchor = state;
              this.placeMessage(st, m, false);
            }
          }),
      },
      BADGE_TEXT[m.anchor],
    );
    const legacy =
      m.body && !m.error && !m.deleted && !m.keyCommitting
        ? h("span", { class: "legacy-envelope", title: LEGACY_ENVELOPE_TITLE }, "not key-committing")
        : null;
    const receipt = mine && !m.deleted ? this.receiptText(st, m) : null;
    const canDelete = !m.deleted && (mine || this.messenger.me.role === "admin");
    const del = canDelete
      ? h(
          "button",
          {
            type: "button",
            class: "link small delete",
            "aria-label": "Delete this message",
            onclick: async () => {
              if (!confirm("Delete this message for everyone? The ledger keeps a tombstone proving it existed.")) return;
              try {
                await this.api.deleteMessage(m.id);
                m.deleted = true;
                m.body = null;
                m.envelope = null;
                this.placeMessage(st, m, false);
              } catch (err) {
                alert(messageOf(err));
              }
            },
          },
          "Delete",
        )
      : null;
    return h(
      "li",
      { class: `message${mine ? " mine" : ""}`, dataset: { messageId: m.id, seq: String(m.seq), sender: m.senderId } },
      h("div", { class: "meta" }, h("span", { class: "sender" }, mine ? "You" : this.messenger.nameOf(m.senderId)), " ", h("time", { datetime: m.createdAt }, formatTime(m.createdAt))),
      h("div", { class: "bubble" }, ...content),
      h("div", { class: "foot" }, badge, legacy, receipt ? h("span", { class: "receipt" }, receipt) : null, del),
    );
  }

  private receiptText(st: ConvState, m: ChatMessage): string {
    const readers = [...st.readBy.entries()].filter(([u, seq]) => u !== this.messenger.me.id && seq >= m.seq).map(([u]) => u);
    if (readers.length === 0) return "Sent";
    if (st.summary.kind === "direct") return "Read";
    return `Read by ${readers.map((u) => this.messenger.nameOf(u)).join(", ")}`;
  }

  private fileCard(info: FileInfo): HTMLElement {
    const progress = h("progress", { max: "1", value: "0", hidden: true, "aria-label": `Download progress of ${info.name}` });
    const status = h("small", { class: "file-status", "aria-live": "polite" });
    const err = errorBox();
    const preview = h("div", { class: "file-preview" });
    let decrypted: Promise<Blob> | null = null;
    // Downloaded and decrypted once, with progress; the download button and the preview share it.
    const load = (): Promise<Blob> => {
      decrypted ??= (async () => {
        progress.hidden = false;
        err.show(null);
        try {
          const blob = await this.messenger.fetchFile(info, (f) => {
            progress.value = f;
            status.textContent = `Downloading and decrypting… ${Math.round(f * 100)}%`;
          });
          status.textContent = `Decrypted in your browser, SHA-256 checked (${formatBytes(blob.size)}).`;
          return blob;
        } catch (ex) {
          decrypted = null;
          status.textContent = "";
          throw ex;
        } finally {
          progress.hidden = true;
        }
      })();
      return decrypted;
    };
    const button = h(
      "button",
      {
        type: "button",
        class: "small",
        "aria-label": `Download ${info.name}`,
        onclick: async () => {
          button.disabled = true;
          try {
            const url = URL.createObjectURL(await load());
            const a = h("a", { href: url, download: info.name, hidden: true });
            document.body.append(a);
            a.click();
            a.remove();
            setTimeout(() => URL.revokeObjectURL(url), 60_000);
          } catch (ex) {
            err.show(messageOf(ex));
          } finally {
            button.disabled = false;
          }
        },
      },
      "Download",
    );
    if (PREVIEWABLE.test(info.mime ?? "") && Number(info.size) <= MAX_PREVIEW_BYTES) {
      load()
        .then((blob) => {
          const img = h("img", { src: URL.createObjectURL(blob), alt: info.name, class: "image-preview" });
          preview.replaceChildren(img);
        })
        .catch((ex) => err.show(messageOf(ex)));
    }
    return h(
      "div",
      { class: "file-card" },
      preview,
      h("span", { class: "file-icon" }, icon("file")),
      h("div", { class: "file-meta" }, h("strong", { class: "file-name" }, info.name), h("small", null, ` ${formatBytes(Number(info.size) || 0)} · end-to-end encrypted`)),
      button,
      progress,
      status,
      err,
    );
  }

  private composer(st: ConvState): HTMLElement {
    const text = h("textarea", { id: uid("composer"), rows: 2, placeholder: "Write an encrypted message…", autocomplete: "off" });
    const fileInput = h("input", { type: "file", id: uid("attach"), class: "visually-hidden" });
    const progress = h("progress", { max: "1", value: "0", hidden: true, "aria-label": "Upload progress" });
    const progressLabel = h("span", { class: "progress-label", "aria-live": "polite" });
    const err = errorBox();
    const send = h("button", { type: "submit", class: "primary" }, "Send");
    const form = h(
      "form",
      {
        class: "composer",
        "aria-label": "Send a message",
        onsubmit: (e: Event) => {
          e.preventDefault();
          const value = text.value;
          if (!value.trim()) return;
          err.show(null);
          text.value = "";
          text.focus();
          void this.sendText(st, value);
        },
      },
      h("label", { for: text.id, class: "visually-hidden" }, "Message"),
      text,
      h("label", { for: fileInput.id, class: "attach button", title: "Attach a file (encrypted in your browser)" }, icon("clip"), h("span", { class: "attach-text" }, "Attach file")),
      fileInput,
      send,
      h("div", { class: "composer-status" }, progress, progressLabel, err),
    );
    text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    text.addEventListener("input", () => {
      const now = Date.now();
      if (text.value && now - this.lastTypingSent > TYPING_SEND_MS) {
        this.lastTypingSent = now;
        this.live.send({ type: "typing", conversation_id: st.summary.conversation_id });
      }
    });
    fileInput.addEventListener("change", async () => {
      const file = fileInput.files?.[0];
      if (!file) return;
      progress.hidden = false;
      progress.value = 0;
      err.show(null);
      try {
        const sent = await this.messenger.sendFile(
          st.summary,
          file,
          (f, phase) => {
            progress.value = f;
            progressLabel.textContent = `${phase} ${file.name}… ${Math.round(f * 100)}%`;
          },
          this.transport,
        );
        progressLabel.textContent = `Sent ${file.name}.`;
        this.addSent(st, this.messenger.sentMessage(st.summary, sent));
      } catch (ex) {
        err.show(messageOf(ex));
        progressLabel.textContent = "";
      } finally {
        progress.hidden = true;
        fileInput.value = "";
      }
    });
    return form;
  }

  /** Optimistic send: the message shows at once as "Sending…", sealed here, sent over the
   *  WebSocket and confirmed by the server's ack (POST …/messages when the socket is down). */
  private async sendText(st: ConvState, text: string): Promise<void> {
    const pending = h(
      "li",
      { class: "message mine sending", dataset: { state: "sending" } },
      h("div", { class: "meta" }, h("span", { class: "sender" }, "You")),
      h("div", { class: "bubble" }, h("p", { class: "text" }, text)),
      h("div", { class: "foot" }, h("span", { class: "receipt", role: "status" }, "Sending…")),
    );
    if (st.summary.conversation_id === this.activeId) {
      this.messageList?.querySelector(":scope > li.empty")?.remove();
      this.messageList?.append(pending);
      this.scrollToEnd();
    }
    try {
      const sent = await this.messenger.sendText(st.summary, text, this.transport);
      pending.remove();
      this.addSent(st, this.messenger.sentMessage(st.summary, sent));
    } catch (err) {
      if (err instanceof TrustError) void this.renderBanner();
      pending.dataset.state = "failed";
      pending.classList.replace("sending", "failed");
      const foot = pending.querySelector(".foot")!;
      clear(
        foot as HTMLElement,
        h("span", { class: "error", role: "alert" }, `Not sent: ${messageOf(err)}`),
        h("button", { type: "button", class: "link small", onclick: () => (pending.remove(), void this.sendText(st, text)) }, "Retry"),
      );
    }
  }

  /** The WebSocket's send → ack, falling back to HTTP (same client_id: a retry is one message). */
  private readonly transport: Transport = async (conversationId, payload) => {
    if (this.live.state === "ready") {
      try {
        const ack = await this.live.request({ type: "send", conversation_id: conversationId, ...payload }, payload.client_id, 10_000);
        return { message_id: String(ack.message_id), seq: Number(ack.seq) };
      } catch {
        /* refused or no ack: HTTP gives the definitive answer (and its status code) */
      }
    }
    return this.messenger.httpPost(conversationId, payload);
  };

  private addSent(st: ConvState, m: ChatMessage): void {
    st.summary.last_seq = Math.max(st.summary.last_seq ?? 0, m.seq);
    st.summary.last_message_at = m.createdAt;
    if (!st.byId.has(m.id)) {
      st.byId.set(m.id, m);
      st.messages.push(m);
      st.messages.sort((a, b) => a.seq - b.seq);
      this.placeMessage(st, m);
      this.scheduleProof(m);
    }
    this.setPreview(st, st.byId.get(m.id)!);
    this.renderSidebar();
  }

  private async markRead(): Promise<void> {
    const st = this.activeId ? this.convs.get(this.activeId) : null;
    if (!st || !document.hasFocus() || document.visibilityState !== "visible") return;
    const last = st.messages.at(-1)?.seq;
    if (last === undefined || (st.summary.read_seq ?? -1) >= last) return;
    st.summary.read_seq = last;
    try {
      await this.api.markRead(st.summary.conversation_id, last);
    } catch {
      st.summary.read_seq = undefined;
    }
  }

  // ------------------------------------------------------------------ proofs in the background

  /** The ledger logs a message a moment after it is stored (and says 404 until then): a fresh
   *  message waits for the "anchored" frame, with a late poll in case that frame was missed. */
  private scheduleProof(m: ChatMessage): void {
    const age = Date.now() - new Date(m.createdAt).getTime();
    if (age > FRESH_MS) this.queueProof(m);
    else setTimeout(() => this.queueProof(m), FRESH_MS - Math.max(0, age));
  }

  private queueProof(m: ChatMessage): void {
    if (m.deleted || m.anchor === "verified" || m.anchor === "invalid") return;
    this.proofQueue.push(m);
    while (this.proofWorkers < 3 && this.proofQueue.length) {
      this.proofWorkers++;
      void this.proofWorker().finally(() => this.proofWorkers--);
    }
  }

  private async proofWorker(): Promise<void> {
    for (let m = this.proofQueue.shift(); m; m = this.proofQueue.shift()) {
      try {
        const { proof, check } = await this.messenger.proofOf(m);
        const next = !check.ok && check.reason !== "entry not yet in the log" ? "invalid" : proof.status === "anchored" ? (check.ok ? "verified" : "anchored") : "pending";
        if (next !== m.anchor) {
          m.anchor = next;
          const st = this.convs.get(m.conversationId);
          if (st) this.placeMessage(st, m, false);
        }
        // An "anchored" frame normally updates the badge; ask again in case it was missed.
        const polls = this.proofPolls.get(m.id) ?? 0;
        if (next === "pending" && polls < 4) {
          this.proofPolls.set(m.id, polls + 1);
          const later = m;
          setTimeout(() => this.queueProof(later), 5000 * (polls + 1));
        }
      } catch {
        /* the badge stays as it is; the dialog shows errors */
      }
    }
  }

  // ------------------------------------------------------------------ live frames

  private async onFrame(f: ServerFrame): Promise<void> {
    switch (f.type) {
      case "message":
        return this.onMessage(f.conversation_id, f.message);
      case "receipt": {
        const st = this.convs.get(f.conversation_id);
        if (!st) return;
        if (f.user_id === this.messenger.me.id) {
          st.unread = 0;
          this.renderSidebar();
          return;
        }
        st.readBy.set(f.user_id, Math.max(Number(f.seq), st.readBy.get(f.user_id) ?? -1));
        if (st.summary.conversation_id === this.activeId) for (const m of st.messages) if (m.senderId === this.messenger.me.id) this.placeMessage(st, m, false);
        return;
      }
      case "deleted": {
        const st = this.convs.get(f.conversation_id);
        const m = st?.byId.get(f.message_id);
        if (st && m) {
          m.deleted = true;
          m.body = null;
          m.envelope = null;
          this.placeMessage(st, m, false);
          if (st.preview?.seq === m.seq) {
            st.preview = null;
            this.setPreview(st, m);
            this.renderSidebar();
          }
        }
        return;
      }
      case "typing":
        return this.onTyping(f.conversation_id, f.user_id);
      case "anchored": {
        const ids = new Set<string>(f.message_ids ?? []);
        for (const st of this.convs.values()) {
          for (const m of st.messages) {
            if (ids.has(m.id) && m.anchor === "pending") {
              m.anchor = "anchored";
              this.placeMessage(st, m, false);
              this.queueProof(m);
            }
          }
        }
        return;
      }
      case "key_changed": {
        this.messenger.forgetKeys(f.user_id);
        const active = this.activeId ? this.convs.get(this.activeId) : null;
        if (active?.summary.members.includes(f.user_id)) {
          await this.messenger.keysOf(f.user_id, true).catch(() => undefined);
          void this.renderBanner();
        }
        return;
      }
      case "conversation": {
        if (f.event === "removed") {
          this.convs.delete(f.conversation_id);
          if (this.activeId === f.conversation_id) this.navigate("/");
        } else if (f.conversation) {
          this.upsert(f.conversation);
          if (f.conversation_id === this.activeId) this.renderHeaderTitle();
        }
        this.renderSidebar();
        return;
      }
      case "error":
        console.warn("server:", f.code, f.message);
        return;
    }
  }

  private async onMessage(conversationId: string | undefined, view: MessageView | undefined): Promise<void> {
    if (!conversationId || !view) return;
    let st = this.convs.get(conversationId);
    if (!st) {
      await this.loadConversations().catch(() => undefined);
      st = this.convs.get(conversationId);
      if (!st) return;
    }
    st.summary.last_seq = Math.max(st.summary.last_seq ?? 0, view.seq);
    st.summary.last_message_at = view.created_at;
    if (st.byId.has(view.message_id)) return;
    const active = conversationId === this.activeId;
    if (!st.loaded && !active) {
      if (view.sender_id !== this.messenger.me.id) st.unread += 1;
      this.setPreview(st, await this.messenger.open(view, conversationId));
      this.renderSidebar();
      return;
    }
    const [m] = await this.ingest(st, [view]);
    if (!m) return;
    this.clearTyping(st, m.senderId);
    if (active) {
      this.placeMessage(st, m);
      void this.markRead();
      if (!document.hasFocus() && m.senderId !== this.messenger.me.id) st.unread += 1;
    } else if (m.senderId !== this.messenger.me.id) st.unread += 1;
    this.renderSidebar();
  }

  private onTyping(conversationId: string, userId: string): void {
    const st = this.convs.get(conversationId);
    if (!st || userId === this.messenger.me.id) return;
    const old = st.typing.get(userId);
    if (old) clearTimeout(old);
    st.typing.set(userId, setTimeout(() => this.clearTyping(st, userId), TYPING_SHOW_MS));
    this.renderTyping(st);
  }

  private clearTyping(st: ConvState, userId: string): void {
    const t = st.typing.get(userId);
    if (t) clearTimeout(t);
    if (st.typing.delete(userId)) this.renderTyping(st);
  }

  private renderTyping(st: ConvState): void {
    if (!this.typingLine || st.summary.conversation_id !== this.activeId) return;
    const names = [...st.typing.keys()].map((u) => this.messenger.nameOf(u));
    this.typingLine.textContent = names.length === 0 ? "" : `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`;
  }

  // ------------------------------------------------------------------ keys and safety numbers

  private async renderBanner(): Promise<void> {
    const st = this.activeId ? this.convs.get(this.activeId) : null;
    const box = this.bannerBox;
    if (!st || !box) return;
    const peers = st.summary.members.filter((m) => m !== this.messenger.me.id);
    const notes: HTMLElement[] = [];
    for (const peer of peers) {
      try {
        const entry = await this.messenger.keysOf(peer);
        if (entry.keys.length === 0) {
          notes.push(h("div", { class: "banner info", role: "status" }, `${this.messenger.nameOf(peer)} has not set up encryption keys yet; messages cannot be sent to them until they log in once.`));
          continue;
        }
        if ([...entry.logStatus.values()].includes("invalid")) {
          notes.push(h("div", { class: "banner danger", role: "alert" }, `The transparency-log proof of one of ${this.messenger.nameOf(peer)}'s keys does not verify. Messages to ${this.messenger.nameOf(peer)} are blocked: compare safety numbers.`));
        } else if ([...entry.logStatus.values()].some((s) => s === "pending" || s === "logged")) {
          notes.push(h("div", { class: "banner info key-pending", role: "status" }, `Pending: one of ${this.messenger.nameOf(peer)}'s keys is not anchored on chain yet (the ledger anchors within seconds).`));
        }
        const fresh = await this.messenger.unconfirmed(peer);
        if (fresh.length) {
          const name = this.messenger.nameOf(peer);
          notes.push(
            h(
              "div",
              { class: "banner warning key-change", role: "alert" },
              h("p", null, h("strong", null, `${name}'s security keys changed. `), `${name} may have a new device, or someone may be trying to intercept your messages. Nothing is sent to the new device until you confirm it; compare the safety number with ${name} over another channel.`),
              h(
                "div",
                { class: "banner-actions" },
                h("button", { type: "button", onclick: () => void this.safetyDialog([peer]) }, "Verify safety number"),
                h("button", { type: "button", class: "secondary", onclick: async () => (await this.messenger.acceptKeys(peer), void this.renderBanner()) }, "Confirm new keys"),
              ),
            ),
          );
        }
      } catch {
        /* keys unavailable: sending shows the error */
      }
    }
    if (this.bannerBox === box) clear(box, notes);
  }

  private async safetyDialog(peers: string[]): Promise<void> {
    const body = h("div", { class: "safety" }, h("p", { role: "status" }, "Computing…"));
    modal(peers.length === 1 ? `Safety number with ${this.messenger.nameOf(peers[0]!)}` : "Safety numbers", body);
    const sections: HTMLElement[] = [];
    for (const peer of peers) {
      try {
        const sn = await this.messenger.safetyNumberWith(peer);
        const pin = await this.messenger.pinOf(peer);
        const name = this.messenger.nameOf(peer);
        const status = h("p", { class: "hint" }, pin?.verified ? `You marked ${name} as verified.` : `Compare these digits with ${name} in person or over a call. If they match, nobody is intercepting your messages.`);
        sections.push(
          h(
            "section",
            null,
            peers.length > 1 ? h("h3", null, name) : null,
            h("p", { class: "safety-number mono", "aria-label": `Safety number with ${name}` }, formatSafetyNumber(sn.number)),
            status,
            h("details", null, h("summary", null, "Key ids"), h("p", { class: "mono small" }, `You: ${sn.mine.join(", ")}`), h("p", { class: "mono small" }, `${name}: ${sn.theirs.join(", ")}`)),
            h(
              "button",
              {
                type: "button",
                onclick: async (e: Event) => {
                  await this.messenger.acceptKeys(peer, true);
                  (e.target as HTMLButtonElement).disabled = true;
                  status.textContent = `${name} is marked as verified.`;
                  void this.renderBanner();
                },
              },
              "Mark as verified",
            ),
          ),
        );
      } catch (err) {
        sections.push(h("p", { class: "error" }, messageOf(err)));
      }
    }
    clear(body, sections);
  }
}

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
