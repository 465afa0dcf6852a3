/**
 * The messenger's conversation state and every change to it, as pure functions: each takes a state
 * and returns the next one (the old one is left as it was) plus what the views must draw again.
 * No DOM, no network, no timers here; decrypting is the messenger's job, the views draw.
 */
import type { ChatMessage, ConversationSummary, MessageView } from "../../messenger";
import type { ServerFrame } from "../../wire";
import { previewText } from "./select";

/** How long a "typing" frame keeps its sender on the typing line. */
export const TYPING_SHOW_MS = 5000;

export interface Conversation {
  summary: ConversationSummary;
  /** Ascending by seq, one per message id. */
  messages: readonly ChatMessage[];
  loaded: boolean;
  hasEarlier: boolean;
  /** The highest seq each member has read. */
  readBy: ReadonlyMap<string, number>;
  /** Who is typing, until when (ms since the epoch). */
  typing: ReadonlyMap<string, number>;
  unread: number;
  /** The last message, decrypted here, for the conversation list. */
  preview: { seq: number; text: string } | null;
}

export interface ChatState {
  me: string;
  activeId: string | null;
  conversations: ReadonlyMap<string, Conversation>;
}

/** Where the screen keeps its state, for the helpers that change it. */
export interface StateRef {
  state: ChatState;
}

/** What a change asks the views to do. */
export interface Effects {
  sidebar?: boolean;
  /** The open conversation's title may have changed. */
  header?: boolean;
  /** New messages to draw (and scroll to) in the open conversation. */
  added?: ChatMessage[];
  /** Changed messages to draw again where they are shown. */
  redraw?: ChatMessage[];
  /** The conversation whose typing line changed. */
  typing?: string;
  /** Messages whose proof should be asked for now (they were just anchored). */
  proofs?: ChatMessage[];
  /** New messages whose proof is asked for once the ledger has had time to log them. */
  schedule?: ChatMessage[];
  /** A delivered message the messenger must open before `receiveMessage` can add it. */
  open?: { conversationId: string; view: MessageView };
  /** The user whose device keys changed. */
  keysChanged?: string;
  /** The open conversation is gone: leave it. */
  leave?: boolean;
  serverError?: { code: string; message: string };
}

export interface Applied {
  state: ChatState;
  effects: Effects;
}

export function emptyState(me: string): ChatState {
  return { me, activeId: null, conversations: new Map() };
}

function withConversation(state: ChatState, id: string, fn: (c: Conversation) => Conversation): ChatState {
  const conv = state.conversations.get(id);
  if (!conv) return state;
  const conversations = new Map(state.conversations);
  conversations.set(id, fn(conv));
  return { ...state, conversations };
}

/** Add a conversation or merge a newer view of it (the list's unread count wins unless it is open). */
export function upsertConversation(state: ChatState, summary: ConversationSummary): ChatState {
  const id = summary.conversation_id;
  const old = state.conversations.get(id);
  const conversations = new Map(state.conversations);
  if (!old) {
    conversations.set(id, { summary, messages: [], loaded: false, hasEarlier: false, readBy: new Map(), typing: new Map(), unread: summary.unread_count ?? 0, preview: null });
  } else {
    const unread = summary.unread_count !== undefined && id !== state.activeId ? summary.unread_count : old.unread;
    conversations.set(id, { ...old, summary: { ...old.summary, ...summary }, unread });
  }
  return { ...state, conversations };
}

export function openConversation(state: ChatState, id: string | null): ChatState {
  const next = { ...state, activeId: id };
  return id ? withConversation(next, id, (c) => ({ ...c, unread: 0 })) : next;
}

/** The conversation with `m` as its preview, unless it already shows a later message. */
export function withPreview(conv: Conversation, m: ChatMessage, me: string): Conversation {
  if (conv.preview && conv.preview.seq > m.seq) return conv;
  return { ...conv, preview: { seq: m.seq, text: previewText(m, me) } };
}

export function setPreview(state: ChatState, id: string, m: ChatMessage): ChatState {
  return withConversation(state, id, (c) => withPreview(c, m, state.me));
}

/** Add opened messages (those already there are skipped); the preview follows the last one. */
export function addMessages(state: ChatState, id: string, opened: ChatMessage[], page: { loaded?: boolean; hasEarlier?: boolean } = {}): { state: ChatState; added: ChatMessage[] } {
  let added: ChatMessage[] = [];
  const next = withConversation(state, id, (c) => {
    const known = new Set(c.messages.map((m) => m.id));
    added = opened.filter((m) => !known.has(m.id) && known.add(m.id));
    const messages = [...c.messages, ...added].sort((a, b) => a.seq - b.seq);
    const conv = { ...c, messages, loaded: page.loaded ?? c.loaded, hasEarlier: page.hasEarlier ?? c.hasEarlier };
    const last = messages.at(-1);
    return last ? withPreview(conv, last, state.me) : conv;
  });
  return { state: next, added };
}

/** Replace one message by id (its anchor state or deletion changed). */
export function updateMessage(state: ChatState, id: string, messageId: string, change: Partial<ChatMessage>): { state: ChatState; message: ChatMessage | null } {
  let message: ChatMessage | null = null;
  const next = withConversation(state, id, (c) => {
    const i = c.messages.findIndex((m) => m.id === messageId);
    if (i < 0) return c;
    message = { ...c.messages[i]!, ...change };
    const messages = c.messages.slice();
    messages[i] = message;
    return { ...c, messages };
  });
  return { state: next, message };
}

export function markDeleted(state: ChatState, id: string, messageId: string): { state: ChatState; message: ChatMessage | null } {
  const res = updateMessage(state, id, messageId, { deleted: true, body: null, envelope: null });
  const m = res.message;
  const conv = res.state.conversations.get(id);
  if (!m || !conv || conv.preview?.seq !== m.seq) return res;
  return { ...res, state: withConversation(res.state, id, (c) => withPreview({ ...c, preview: null }, m, state.me)) };
}

/** A message this device sent (it is known without decrypting): added once, the list moves. */
export function addSent(state: ChatState, id: string, m: ChatMessage): { state: ChatState; added: boolean } {
  const bumped = withConversation(state, id, (c) => ({ ...c, summary: { ...c.summary, last_seq: Math.max(c.summary.last_seq ?? 0, m.seq), last_message_at: m.createdAt } }));
  const res = addMessages(bumped, id, [m]);
  return { state: res.state, added: res.added.length > 0 };
}

export function setReadSeq(state: ChatState, id: string, seq: number | undefined): ChatState {
  return withConversation(state, id, (c) => ({ ...c, summary: { ...c.summary, read_seq: seq } }));
}

/** Someone stops typing: they sent a message. */
export function stopTyping(state: ChatState, id: string, userId: string): ChatState {
  return withConversation(state, id, (c) => {
    if (!c.typing.has(userId)) return c;
    const typing = new Map(c.typing);
    typing.delete(userId);
    return { ...c, typing };
  });
}

/** A delivered message, opened: added where the conversation is loaded or open, else only its
 *  preview and unread count change. `focused`: whether the user is looking at this page. */
export function receiveMessage(state: ChatState, id: string, m: ChatMessage, focused: boolean): Applied {
  const conv = state.conversations.get(id);
  if (!conv || conv.messages.some((x) => x.id === m.id)) return { state, effects: {} };
  const active = state.activeId === id;
  const fromOther = m.senderId !== state.me;
  if (!conv.loaded && !active) {
    const next = withConversation(state, id, (c) => withPreview({ ...c, unread: c.unread + (fromOther ? 1 : 0) }, m, state.me));
    return { state: next, effects: { sidebar: true } };
  }
  const res = addMessages(stopTyping(state, id, m.senderId), id, [m]);
  const unseen = fromOther && (!active || !focused);
  const next = unseen ? withConversation(res.state, id, (c) => ({ ...c, unread: c.unread + 1 })) : res.state;
  return { state: next, effects: { sidebar: true, typing: id, added: active ? res.added : [], schedule: res.added } };
}

/** The state after one frame of the live connection, and what to draw. */
export function applyFrame(state: ChatState, f: ServerFrame, now = Date.now()): Applied {
  switch (f.type) {
    case "message": {
      const next = withConversation(state, f.conversation_id, (c) => ({ ...c, summary: { ...c.summary, last_seq: Math.max(c.summary.last_seq ?? 0, f.message.seq), last_message_at: f.message.created_at } }));
      const conv = next.conversations.get(f.conversation_id);
      if (conv?.messages.some((m) => m.id === f.message.message_id)) return { state: next, effects: {} };
      return { state: next, effects: { open: { conversationId: f.conversation_id, view: f.message } } };
    }
    case "receipt": {
      const conv = state.conversations.get(f.conversation_id);
      if (!conv) return { state, effects: {} };
      if (f.user_id === state.me) return { state: withConversation(state, f.conversation_id, (c) => ({ ...c, unread: 0 })), effects: { sidebar: true } };
      const readBy = new Map(conv.readBy).set(f.user_id, Math.max(Number(f.seq), conv.readBy.get(f.user_id) ?? -1));
      const next = withConversation(state, f.conversation_id, (c) => ({ ...c, readBy }));
      const mine = state.activeId === f.conversation_id ? conv.messages.filter((m) => m.senderId === state.me) : [];
      return { state: next, effects: { redraw: mine } };
    }
    case "deleted": {
      const before = state.conversations.get(f.conversation_id)?.preview;
      const res = markDeleted(state, f.conversation_id, f.message_id);
      if (!res.message) return { state, effects: {} };
      return { state: res.state, effects: { redraw: [res.message], sidebar: before?.seq === res.message.seq } };
    }
    case "typing": {
      if (!state.conversations.has(f.conversation_id) || f.user_id === state.me) return { state, effects: {} };
      const next = withConversation(state, f.conversation_id, (c) => ({ ...c, typing: new Map(c.typing).set(f.user_id, now + TYPING_SHOW_MS) }));
      return { state: next, effects: { typing: f.conversation_id } };
    }
    case "anchored":
      return anchored(state, new Set(f.message_ids));
    case "key_changed":
      return { state, effects: { keysChanged: f.user_id } };
    case "conversation": {
      if (f.event === "removed") {
        const conversations = new Map(state.conversations);
        conversations.delete(f.conversation_id);
        return { state: { ...state, conversations }, effects: { sidebar: true, leave: state.activeId === f.conversation_id } };
      }
      if (!f.conversation) return { state, effects: { sidebar: true } };
      return { state: upsertConversation(state, f.conversation), effects: { sidebar: true, header: state.activeId === f.conversation_id } };
    }
    case "error":
      return { state, effects: { serverError: { code: f.code, message: f.message } } };
    default:
      return { state, effects: {} };
  }
}

/** An `anchored` frame: the pending messages it names are anchored now (their proofs are asked for). */
function anchored(state: ChatState, ids: Set<string>): Applied {
  let next = state;
  const changed: ChatMessage[] = [];
  for (const [id, conv] of state.conversations) {
    for (const m of conv.messages) {
      if (!ids.has(m.id) || m.anchor !== "pending") continue;
      const res = updateMessage(next, id, m.id, { anchor: "anchored" });
      next = res.state;
      if (res.message) changed.push(res.message);
    }
  }
  return { state: next, effects: { redraw: changed, proofs: changed } };
}
