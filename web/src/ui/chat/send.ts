/**
 * Sending from the open conversation. Optimistic: a text shows at once as "Sending…", is sealed
 * here, sent over the WebSocket and confirmed by the server's ack (POST …/messages when the
 * socket is down or gives no answer; the same client_id makes a retry one message).
 */
import { TrustError, type ChatMessage, type ConversationSummary, type Messenger, type Transport } from "../../messenger";
import type { LiveConnection } from "../../ws";
import { pendingMessage } from "./message";

const TYPING_SEND_MS = 3000;

export interface SendHooks {
  summary(conversationId: string): ConversationSummary | null;
  /** Show a message not sent yet (when its conversation is open). */
  showPending(conversationId: string, el: HTMLElement): void;
  sent(conversationId: string, m: ChatMessage): void;
  /** A trust rule refused the send (the banners say why). */
  refused(): void;
}

export class Sender {
  private lastTypingSent = 0;

  constructor(
    private readonly messenger: Messenger,
    private readonly live: LiveConnection,
    private readonly hooks: SendHooks,
  ) {}

  async text(conversationId: string, text: string): Promise<void> {
    const summary = this.hooks.summary(conversationId);
    if (!summary) return;
    const pending = pendingMessage(text);
    this.hooks.showPending(conversationId, pending);
    try {
      const sent = await this.messenger.sendText(summary, text, this.transport);
      pending.remove();
      this.hooks.sent(conversationId, this.messenger.sentMessage(summary, sent));
    } catch (err) {
      if (err instanceof TrustError) this.hooks.refused();
      pending.fail(err, () => void this.text(conversationId, text));
    }
  }

  async file(conversationId: string, file: File, progress: (fraction: number, phase: string) => void): Promise<void> {
    const summary = this.hooks.summary(conversationId);
    if (!summary) return;
    const sent = await this.messenger.sendFile(summary, file, progress, this.transport);
    this.hooks.sent(conversationId, this.messenger.sentMessage(summary, sent));
  }

  /** A typing notice, at most one per TYPING_SEND_MS. */
  typing(conversationId: string): void {
    const now = Date.now();
    if (now - this.lastTypingSent <= TYPING_SEND_MS) return;
    this.lastTypingSent = now;
    this.live.send({ type: "typing", conversation_id: conversationId });
  }

  /** The WebSocket's send → ack, falling back to HTTP (same client_id: a retry is one message). */
  private readonly transport: Transport = async (conversationId, payload) => {
    if (this.live.state === "ready") {
      try {
        const ack = await this.live.request({ type: "send", conversation_id: conversationId, ...payload }, payload.client_id, 10_000);
        return { message_id: ack.message_id, seq: ack.seq };
      } catch {
        /* refused or no ack: HTTP gives the definitive answer (and its status code) */
      }
    }
    return this.messenger.httpPost(conversationId, payload);
  };
}
