/**
 * What the server has stored, into the state: the conversation list (paged), the last message of
 * each for the list's previews, and pages of a conversation's history, decrypted here.
 */
import type { ChatMessage, Messenger, MessageView } from "../../messenger";
import type { ProofQueue } from "./proofs";
import { sortedConversations } from "./select";
import * as store from "./store";

const PAGE = 100;
const PREVIEWS = 50;

export class HistoryLoader {
  private loading = new Map<string, Promise<void>>();
  private previewsLoading = false;

  /** `ref` holds the screen's state; `listChanged` redraws the conversation list. */
  constructor(
    private readonly ref: store.StateRef,
    private readonly messenger: Messenger,
    private readonly proofs: ProofQueue,
    private readonly listChanged: () => void,
  ) {}

  async conversations(): Promise<void> {
    for (const s of await this.messenger.conversations()) this.ref.state = store.upsertConversation(this.ref.state, s);
    this.listChanged();
    void this.previews();
  }

  /** Fetch and decrypt the last message of each conversation whose preview is missing or old. */
  private async previews(): Promise<void> {
    if (this.previewsLoading) return;
    this.previewsLoading = true;
    try {
      for (const c of sortedConversations(this.ref.state).slice(0, PREVIEWS)) {
        const id = c.summary.conversation_id;
        const last = c.summary.last_seq ?? 0;
        if (last <= 0 || (c.preview && c.preview.seq >= last)) continue;
        const local = c.messages.at(-1);
        if (local && local.seq >= last) {
          this.ref.state = store.setPreview(this.ref.state, id, local);
          continue;
        }
        try {
          const [view] = await this.messenger.history(id, { before_seq: last + 1, limit: 1 });
          // opened first: the state is read after the await, or what changed meanwhile would be lost
          const opened = view && (await this.messenger.open(view, id));
          if (opened) this.ref.state = store.setPreview(this.ref.state, id, opened);
        } catch {
          /* no preview: the list still works */
        }
        this.listChanged();
      }
    } finally {
      this.previewsLoading = false;
    }
  }

  /** The last page of a conversation and whatever arrived while it loaded (once; again after a failure). */
  async ensureLoaded(id: string): Promise<void> {
    if (this.ref.state.conversations.get(id)?.loaded) return;
    let loading = this.loading.get(id);
    if (!loading) {
      loading = (async () => {
        const views = await this.messenger.history(id, { limit: PAGE });
        await this.ingest(id, views, { hasEarlier: views.length >= PAGE });
        await this.catchUp(id);
        this.ref.state = store.addMessages(this.ref.state, id, [], { loaded: true }).state;
      })();
      this.loading.set(id, loading);
    }
    try {
      await loading;
    } catch (err) {
      this.loading.delete(id);
      throw err;
    }
  }

  /** The page before the first message held. */
  async earlier(id: string): Promise<void> {
    const first = this.ref.state.conversations.get(id)?.messages[0]?.seq;
    if (first === undefined) return;
    const views = await this.messenger.history(id, { before_seq: first, limit: PAGE });
    await this.ingest(id, views, { hasEarlier: views.length >= PAGE });
  }

  /** Everything after the last message held (up to 20 pages). */
  async catchUp(id: string): Promise<ChatMessage[]> {
    const added: ChatMessage[] = [];
    for (let i = 0; i < 20; i++) {
      const after = this.ref.state.conversations.get(id)?.messages.at(-1)?.seq;
      if (after === undefined) break;
      const views = await this.messenger.history(id, { after_seq: after, limit: PAGE });
      added.push(...(await this.ingest(id, views)));
      if (views.length < PAGE) break;
    }
    return added;
  }

  /** Open and add a page of history; the newest 40 of them get their proofs asked for. */
  private async ingest(id: string, views: MessageView[], page: { hasEarlier?: boolean } = {}): Promise<ChatMessage[]> {
    const known = new Set(this.ref.state.conversations.get(id)?.messages.map((m) => m.id));
    const opened = await Promise.all(views.filter((v) => !known.has(v.message_id)).map((v) => this.messenger.open(v, id)));
    const res = store.addMessages(this.ref.state, id, opened, page);
    this.ref.state = res.state;
    for (const m of res.added.slice(-40)) this.proofs.schedule(m);
    return res.added;
  }
}
