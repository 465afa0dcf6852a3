/**
 * The messenger screen (conversation list left, open conversation right). It holds the state
 * (store.ts), feeds it what the server says (history, live frames, acks) and tells the views
 * (sidebar.ts, pane.ts and their parts) what to draw.
 */
import type { ApiClient } from "../../api";
import type { ChatMessage, ConversationSummary, Messenger } from "../../messenger";
import type { LiveConnection, ServerFrame } from "../../ws";
import { clear, h, messageOf } from "../dom";
import { KeyBanners } from "./banner";
import { composer } from "./composer";
import { groupDialog } from "./dialogs";
import { HistoryLoader } from "./history";
import { MessageViews } from "./message";
import { ConversationPane } from "./pane";
import { ProofQueue, type Anchor } from "./proofs";
import { Sender } from "./send";
import { Sidebar } from "./sidebar";
import { activeConversation, conversationTitle, findMessage } from "./select";
import * as store from "./store";

export class ChatScreen implements store.StateRef {
  /** Replaced, never changed in place: every change goes through store.ts. */
  state: store.ChatState;
  private readonly layout = h("div", { class: "layout" });
  private readonly sidebar: Sidebar;
  private readonly pane = new ConversationPane();
  private readonly proofs: ProofQueue;
  private readonly send: Sender;
  private readonly history: HistoryLoader;
  private readonly messages: MessageViews;
  private readonly banners: KeyBanners;
  private unsubscribers: (() => void)[] = [];

  constructor(
    private readonly root: HTMLElement,
    private readonly api: ApiClient,
    private readonly messenger: Messenger,
    private readonly live: LiveConnection,
    private readonly navigate: (path: string) => void,
  ) {
    this.state = store.emptyState(messenger.me.id);
    this.banners = new KeyBanners(messenger, this.pane, () => activeConversation(this.state));
    this.sidebar = new Sidebar(messenger, { created: (c) => this.created(c), newGroup: () => groupDialog(messenger, (c) => this.created(c)) });
    this.proofs = new ProofQueue(messenger, (m) => findMessage(this.state, m), (m, anchor) => this.setAnchor(m, anchor));
    this.send = new Sender(messenger, live, {
      summary: (id) => this.state.conversations.get(id)?.summary ?? null,
      showPending: (id, el) => id === this.state.activeId && this.pane.appendPending(el),
      sent: (id, m) => this.addSent(id, m),
      refused: () => void this.banners.render(),
    });
    this.messages = new MessageViews(messenger, {
      conversation: (m) => this.state.conversations.get(m.conversationId),
      current: (m) => findMessage(this.state, m),
      setAnchor: (m, anchor) => this.setAnchor(m, anchor),
      remove: (m) => void this.remove(m),
    });
    this.history = new HistoryLoader(this, messenger, this.proofs, () => this.sidebar.render(this.state));
  }

  async mount(activeId: string | null): Promise<void> {
    clear(this.layout, this.sidebar.el, this.pane.el);
    clear(this.root, this.layout);
    const onFocus = (): void => void this.markRead();
    window.addEventListener("focus", onFocus);
    this.unsubscribers.push(
      this.live.onFrame((f) => void this.onFrame(f)),
      this.live.onState((s) => s === "ready" && void this.catchUp()),
      this.messenger.keyChanged.on((c) => activeConversation(this.state)?.summary.members.includes(c.userId) && void this.banners.render()),
      this.messenger.namesChanged.on(() => (this.sidebar.render(this.state), this.renderHeaderTitle())),
      () => window.removeEventListener("focus", onFocus),
    );
    this.pane.empty();
    try {
      await this.history.conversations();
    } catch (err) {
      this.pane.alert(messageOf(err));
    }
    if (activeId) await this.open(activeId);
  }

  unmount(): void {
    for (const u of this.unsubscribers) u();
    this.unsubscribers = [];
  }

  /** Route change within the chat screen. */
  async show(activeId: string | null): Promise<void> {
    if (activeId) return this.open(activeId);
    this.state = store.openConversation(this.state, null);
    this.layout.classList.remove("has-active");
    this.sidebar.render(this.state);
    this.pane.empty();
  }

  // ------------------------------------------------------------------ state → views

  private title(s: ConversationSummary): string {
    return conversationTitle(s, this.state.me, (u) => this.messenger.nameOf(u));
  }

  private renderHeaderTitle(): void {
    const conv = activeConversation(this.state);
    if (conv) this.pane.setTitle(this.title(conv.summary));
  }

  private draw(m: ChatMessage, scroll: boolean): void {
    if (m.conversationId === this.state.activeId) this.pane.place(m, this.messages.element(m), scroll);
  }

  private setAnchor(m: ChatMessage, anchor: Anchor): void {
    const res = store.updateMessage(this.state, m.conversationId, m.id, { anchor });
    this.state = res.state;
    if (res.message) this.draw(res.message, false);
  }

  private renderMessages(id: string): void {
    const conv = this.state.conversations.get(id);
    if (conv) this.pane.showMessages(conv.messages, (m) => this.messages.element(m), conv.hasEarlier ? () => void this.loadEarlier(id) : null);
  }

  private renderTyping(id: string): void {
    const conv = this.state.conversations.get(id);
    if (conv && id === this.state.activeId) this.pane.setTyping(conv.typing, (u) => this.messenger.nameOf(u));
  }

  /** Do what a change asks for. */
  private async apply(e: store.Effects): Promise<void> {
    for (const m of e.added ?? []) this.draw(m, true);
    for (const m of e.redraw ?? []) this.draw(m, false);
    for (const m of e.proofs ?? []) this.proofs.ask(m);
    for (const m of e.schedule ?? []) this.proofs.schedule(m);
    if (e.added?.length) void this.markRead();
    if (e.typing) this.renderTyping(e.typing);
    if (e.leave) this.navigate("/");
    if (e.sidebar) this.sidebar.render(this.state);
    if (e.header) this.renderHeaderTitle();
    if (e.serverError) console.warn("server:", e.serverError.code, e.serverError.message);
    if (e.keysChanged) await this.banners.keysChanged(e.keysChanged);
  }

  private created(conv: ConversationSummary): void {
    this.state = store.upsertConversation(this.state, conv);
    this.sidebar.render(this.state);
    this.navigate(`/c/${encodeURIComponent(conv.conversation_id)}`);
  }

  private async open(id: string): Promise<void> {
    if (!this.state.conversations.has(id)) await this.history.conversations().catch(() => undefined);
    const conv = this.state.conversations.get(id);
    if (!conv) return this.pane.alert("This conversation does not exist or you are not a member.");
    this.state = store.openConversation(this.state, id);
    this.layout.classList.add("has-active");
    this.sidebar.render(this.state);
    const peers = conv.summary.members.filter((m) => m !== this.state.me);
    const head = { title: this.title(conv.summary), kind: conv.summary.kind, members: conv.summary.members.length, peers, safety: (p: string[]) => void this.banners.safety(p) };
    this.pane.open(head, composer({ sendText: (text) => void this.send.text(id, text), sendFile: (file, progress) => this.send.file(id, file, progress), typing: () => this.send.typing(id) }));
    if (!(await this.load(id)) || this.state.activeId !== id) return;
    void this.markRead();
    void this.banners.render();
  }

  /** Load the conversation's history and draw it; on failure the list says why (and the next
   *  reconnect tries again). */
  private async load(id: string): Promise<boolean> {
    try {
      await this.history.ensureLoaded(id);
    } catch (err) {
      if (id === this.state.activeId) this.pane.loadFailed(err);
      return false;
    }
    if (id === this.state.activeId) this.renderMessages(id);
    return true;
  }

  /** After a reconnect: refresh the list and fetch what was missed in loaded conversations (the
   *  open one is loaded now if it could not be before). */
  private async catchUp(): Promise<void> {
    await this.history.conversations().catch(() => undefined);
    for (const [id, conv] of this.state.conversations) {
      if (!conv.loaded && id === this.state.activeId) await this.load(id);
      if (!conv.loaded) continue;
      for (const m of await this.history.catchUp(id).catch(() => [])) this.draw(m, true);
    }
    void this.markRead();
  }

  private async loadEarlier(id: string): Promise<void> {
    await this.history.earlier(id);
    if (id === this.state.activeId) this.renderMessages(id);
  }

  private addSent(id: string, m: ChatMessage): void {
    const res = store.addSent(this.state, id, m);
    this.state = res.state;
    if (res.added) {
      this.draw(m, true);
      this.proofs.schedule(m);
    }
    this.sidebar.render(this.state);
  }

  private async markRead(): Promise<void> {
    const conv = activeConversation(this.state);
    if (!conv || !document.hasFocus() || document.visibilityState !== "visible") return;
    const id = conv.summary.conversation_id;
    const last = conv.messages.at(-1)?.seq;
    if (last === undefined || (conv.summary.read_seq ?? -1) >= last) return;
    this.state = store.setReadSeq(this.state, id, last);
    try {
      await this.api.markRead(id, last);
    } catch {
      this.state = store.setReadSeq(this.state, id, undefined);
    }
  }

  private async remove(m: ChatMessage): Promise<void> {
    if (!confirm("Delete this message for everyone? The ledger keeps a tombstone proving it existed.")) return;
    try {
      await this.api.deleteMessage(m.id);
      const res = store.markDeleted(this.state, m.conversationId, m.id);
      this.state = res.state;
      if (res.message) this.draw(res.message, false);
    } catch (err) {
      alert(messageOf(err));
    }
  }

  // ------------------------------------------------------------------ live frames

  private async onFrame(f: ServerFrame): Promise<void> {
    let applied = store.applyFrame(this.state, f);
    const unknown = applied.effects.open && !this.state.conversations.has(applied.effects.open.conversationId);
    if (unknown) {
      await this.history.conversations().catch(() => undefined);
      applied = store.applyFrame(this.state, f);
      if (!this.state.conversations.has(applied.effects.open!.conversationId)) return;
    }
    this.state = applied.state;
    const delivered = applied.effects.open;
    if (!delivered) return this.apply(applied.effects);
    const m = await this.messenger.open(delivered.view, delivered.conversationId);
    const received = store.receiveMessage(this.state, delivered.conversationId, m, document.hasFocus());
    this.state = received.state;
    return this.apply(received.effects);
  }
}
