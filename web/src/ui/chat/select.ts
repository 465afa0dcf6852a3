/**
 * What the views read from the chat state (store.ts): titles, order, previews, receipts, who is typing.
 */
import type { ChatMessage, ConversationSummary, FileInfo } from "../../messenger";
import type { ChatState, Conversation } from "./store";

/** The conversation's title, else its other members' names ("Notes to self" when alone). */
export function conversationTitle(s: ConversationSummary, me: string, nameOf: (userId: string) => string): string {
  if (s.title) return s.title;
  const others = s.members.filter((m) => m !== me);
  if (others.length === 0) return "Notes to self";
  return others.map(nameOf).join(", ");
}

export function activeConversation(state: ChatState): Conversation | null {
  return state.activeId ? (state.conversations.get(state.activeId) ?? null) : null;
}

/** Most recently active first. */
export function sortedConversations(state: ChatState): Conversation[] {
  const key = (c: Conversation): string => c.summary.last_message_at ?? c.messages.at(-1)?.createdAt ?? c.summary.created_at ?? "";
  return [...state.conversations.values()].sort((a, b) => key(b).localeCompare(key(a)));
}

/** The message as the state holds it now, or null once its conversation is gone. */
export function findMessage(state: ChatState, m: ChatMessage): ChatMessage | null {
  return state.conversations.get(m.conversationId)?.messages.find((x) => x.id === m.id) ?? null;
}

/** Under the own messages: "Sent", or who has read them ("Read" in a direct conversation). */
export function receiptText(conv: Conversation, m: ChatMessage, me: string, nameOf: (userId: string) => string): string {
  const readers = [...conv.readBy].filter(([u, seq]) => u !== me && seq >= m.seq).map(([u]) => u);
  if (readers.length === 0) return "Sent";
  if (conv.summary.kind === "direct") return "Read";
  return `Read by ${readers.map(nameOf).join(", ")}`;
}

/** Who is typing at `now` (a notice counts for TYPING_SHOW_MS). */
export function typingUsers(typing: ReadonlyMap<string, number>, now: number): string[] {
  return [...typing].filter(([, until]) => until > now).map(([u]) => u);
}

export function previewText(m: ChatMessage, me: string): string {
  const who = m.senderId === me ? "You: " : "";
  if (m.deleted) return `${who}message deleted`;
  if (m.errorCode === "wrong_conversation" || m.errorCode === "bad_signature") return `${who}invalid message`;
  if (m.error) return `${who}encrypted message (cannot be read on this device)`;
  if (m.body?.type === "text") return `${who}${String(m.body.text ?? "").replace(/\s+/g, " ").slice(0, 120)}`;
  if (m.body?.type === "file") return `${who}file ${String(((m.body.file ?? m.body) as FileInfo).name ?? "")}`;
  return `${who}message`;
}
