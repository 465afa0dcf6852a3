import { describe, expect, it } from "vitest";
import type { ChatMessage, ConversationSummary } from "../src/messenger";
import { conversationTitle, receiptText, sortedConversations, typingUsers } from "../src/ui/chat/select";
import { TYPING_SHOW_MS, addMessages, addSent, applyFrame, emptyState, openConversation, receiveMessage, upsertConversation, type ChatState } from "../src/ui/chat/store";
import type { MessageView } from "../src/wire";

const ME = "me";
const PEER = "peer";
const AT = "2026-12-03T12:00:00.000Z";

function summary(id: string, extra: Partial<ConversationSummary> = {}): ConversationSummary {
  return { conversation_id: id, kind: "direct", members: [ME, PEER], admins: [], created_by: ME, created_at: AT, unread_count: 0, last_seq: 0, ...extra };
}

function message(conv: string, seq: number, sender = PEER, text = `m${seq}`): ChatMessage {
  return {
    id: `${conv}-${seq}`,
    seq,
    conversationId: conv,
    senderId: sender,
    createdAt: `2026-12-03T12:00:${String(seq).padStart(2, "0")}.000Z`,
    deleted: false,
    body: { type: "text", text },
    error: null,
    errorCode: null,
    envelope: null,
    anchor: "pending",
    keyCommitting: true,
  };
}

function view(conv: string, seq: number): MessageView {
  return { message_id: `${conv}-${seq}`, seq, created_at: `2026-12-03T12:00:${seq}.000Z`, conversation_id: conv, sender_id: PEER };
}

/** Conversation "c" loaded with messages 1..n, and "d" not loaded. */
function loaded(n = 2, active: string | null = "c"): ChatState {
  let s = upsertConversation(upsertConversation(emptyState(ME), summary("c")), summary("d"));
  s = addMessages(s, "c", Array.from({ length: n }, (_, i) => message("c", i + 1)), { loaded: true }).state;
  return openConversation(s, active);
}

const conv = (s: ChatState, id = "c") => s.conversations.get(id)!;

describe("applyFrame", () => {
  it("leaves the state it was given as it was", () => {
    const before = loaded();
    const snapshot = JSON.stringify([...before.conversations.values()].map((c) => [c.messages, c.unread, c.summary]));
    applyFrame(before, { type: "deleted", conversation_id: "c", message_id: "c-1", seq: 1 });
    applyFrame(before, { type: "anchored", message_ids: ["c-1", "c-2"], head_index: 3 });
    applyFrame(before, { type: "conversation", event: "removed", conversation_id: "c" });
    expect(JSON.stringify([...before.conversations.values()].map((c) => [c.messages, c.unread, c.summary]))).toBe(snapshot);
    expect(before.conversations.size).toBe(2);
  });

  it("asks for a delivered message to be opened, once, and moves the conversation up", () => {
    const { state, effects } = applyFrame(loaded(), { type: "message", conversation_id: "d", message: view("d", 7) });
    expect(effects.open).toEqual({ conversationId: "d", view: view("d", 7) });
    expect(conv(state, "d").summary.last_seq).toBe(7);
    expect(sortedConversations(state)[0]!.summary.conversation_id).toBe("d");
    expect(applyFrame(loaded(), { type: "message", conversation_id: "c", message: view("c", 2) }).effects.open).toBeUndefined();
  });

  it("counts a delivered message as unread unless it is open and looked at", () => {
    const s = loaded();
    const elsewhere = receiveMessage(s, "d", message("d", 1), true);
    expect(conv(elsewhere.state, "d").unread).toBe(1);
    expect(conv(elsewhere.state, "d").messages).toEqual([]); // not loaded: only its preview
    expect(conv(elsewhere.state, "d").preview?.text).toBe("m1");
    const open = receiveMessage(s, "c", message("c", 3), true);
    expect(conv(open.state).unread).toBe(0);
    expect(open.effects.added?.map((m) => m.seq)).toEqual([3]);
    expect(conv(receiveMessage(s, "c", message("c", 3), false).state).unread).toBe(1);
    expect(conv(receiveMessage(s, "c", message("c", 3, ME), false).state).unread).toBe(0);
    expect(receiveMessage(open.state, "c", message("c", 3), true).effects).toEqual({});
  });

  it("keeps read positions per member and redraws the own messages' receipts", () => {
    let s = addSent(loaded(), "c", message("c", 3, ME)).state;
    const r = applyFrame(s, { type: "receipt", conversation_id: "c", user_id: PEER, seq: 3 });
    s = r.state;
    expect(r.effects.redraw?.map((m) => m.id)).toEqual(["c-3"]);
    expect(receiptText(conv(s), conv(s).messages.at(-1)!, ME, (u) => u)).toBe("Read");
    // an older receipt does not move it back
    s = applyFrame(s, { type: "receipt", conversation_id: "c", user_id: PEER, seq: 1 }).state;
    expect(conv(s).readBy.get(PEER)).toBe(3);
    // the own receipt (another device read it) clears the unread count
    const unread = receiveMessage(openConversation(s, null), "c", message("c", 4), true).state;
    expect(conv(unread).unread).toBe(1);
    expect(conv(applyFrame(unread, { type: "receipt", conversation_id: "c", user_id: ME, seq: 4 }).state).unread).toBe(0);
  });

  it("turns a deleted message into a tombstone and the preview with it", () => {
    const { state, effects } = applyFrame(loaded(), { type: "deleted", conversation_id: "c", message_id: "c-2", seq: 2 });
    const m = conv(state).messages[1]!;
    expect([m.deleted, m.body, m.envelope]).toEqual([true, null, null]);
    expect(conv(state).preview).toEqual({ seq: 2, text: "message deleted" });
    expect(effects).toEqual({ redraw: [m], sidebar: true });
    expect(applyFrame(loaded(), { type: "deleted", conversation_id: "c", message_id: "nope", seq: 9 }).effects).toEqual({});
  });

  it("shows who is typing for a few seconds, never the user themself", () => {
    const now = 1_000_000;
    const s = applyFrame(loaded(), { type: "typing", conversation_id: "c", user_id: PEER }, now).state;
    expect(typingUsers(conv(s).typing, now + TYPING_SHOW_MS - 1)).toEqual([PEER]);
    expect(typingUsers(conv(s).typing, now + TYPING_SHOW_MS)).toEqual([]);
    expect(applyFrame(loaded(), { type: "typing", conversation_id: "c", user_id: ME }, now).effects).toEqual({});
    // their message ends it
    expect(typingUsers(conv(receiveMessage(s, "c", message("c", 3), true).state).typing, now)).toEqual([]);
  });

  it("marks the pending messages an anchored frame names, and asks for their proofs", () => {
    const s = addMessages(loaded(), "c", [{ ...message("c", 3), anchor: "verified" }]).state;
    const { state, effects } = applyFrame(s, { type: "anchored", message_ids: ["c-1", "c-3", "x"], head_index: 1 });
    expect(conv(state).messages.map((m) => m.anchor)).toEqual(["anchored", "pending", "verified"]);
    expect(effects.proofs?.map((m) => m.id)).toEqual(["c-1"]);
  });

  it("follows membership: a new conversation appears, a removed one goes (leaving it when open)", () => {
    const created = applyFrame(loaded(), { type: "conversation", event: "created", conversation_id: "g", conversation: { ...summary("g"), kind: "group", title: "Team" } });
    expect(conversationTitle(conv(created.state, "g").summary, ME, (u) => u)).toBe("Team");
    expect(created.effects).toEqual({ sidebar: true, header: false });
    const removed = applyFrame(loaded(), { type: "conversation", event: "removed", conversation_id: "c" });
    expect(removed.state.conversations.has("c")).toBe(false);
    expect(removed.effects).toEqual({ sidebar: true, leave: true });
  });

  it("passes key changes and server errors on", () => {
    expect(applyFrame(loaded(), { type: "key_changed", user_id: PEER }).effects).toEqual({ keysChanged: PEER });
    expect(applyFrame(loaded(), { type: "error", code: "rate_limited", message: "slow down" }).effects).toEqual({ serverError: { code: "rate_limited", message: "slow down" } });
    expect(applyFrame(loaded(), { type: "pong" }).effects).toEqual({});
  });
});

describe("conversation list", () => {
  it("takes the server's unread count except for the open conversation", () => {
    const s = upsertConversation(loaded(), summary("c", { unread_count: 5 }));
    expect(conv(s).unread).toBe(0);
    expect(conv(upsertConversation(s, summary("d", { unread_count: 5 })), "d").unread).toBe(5);
  });

  it("names a conversation by its title, else its other members", () => {
    expect(conversationTitle(summary("c"), ME, (u) => `name of ${u}`)).toBe("name of peer");
    expect(conversationTitle(summary("c", { members: [ME] }), ME, (u) => u)).toBe("Notes to self");
  });

  it("adds each message once, in seq order, and a sent one only once", () => {
    let s = addMessages(loaded(0), "c", [message("c", 3), message("c", 1), message("c", 3)]).state;
    expect(conv(s).messages.map((m) => m.seq)).toEqual([1, 3]);
    s = addSent(s, "c", message("c", 2, ME)).state;
    expect(addSent(s, "c", message("c", 2, ME)).added).toBe(false);
    expect(conv(s).messages.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(conv(s).preview?.text).toBe("m3");
  });
});
