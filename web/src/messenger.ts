/**
 * The client's messaging logic, independent of the DOM: device keys, the key directory with
 * pinning and key-change detection, sealing to every member device, opening and verifying
 * messages, proofs, files. Views subscribe to its events.
 */
import { ApiError, type ApiClient, type UserPublic } from "./api";
import { b64d, b64e } from "./crypto/b64";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { sha256, toHex, type Bytes } from "./crypto/bytes";
import { canonicalJson } from "./crypto/canonical";
import { EnvelopeError, envelopeDigest, openEnvelopeDetailed, pickEnvelope, sealEnvelope, type Envelope, type MessageBody } from "./crypto/envelope";
import { SUITES, SUITE_AES256GCM, generateDeviceKeys, publicKeyFromDirectory, publishBody, type DeviceKeys, type PublicDeviceKey } from "./crypto/keys";
import { verifyProof, type ProofCheck, type ProofObject } from "./crypto/proof";
import { safetyNumber } from "./crypto/safety";
import { StreamDecryptor, StreamEncryptor, ciphertextSize, generateFileKey } from "./crypto/stream";
import { loadDevice, loadPin, loadRetired, saveDevice, savePin, saveRetired, type PinRecord } from "./db";

export interface ConversationSummary {
  conversation_id: string;
  kind: "direct" | "group";
  title?: string | null;
  members: string[];
  admins?: string[];
  created_by?: string;
  created_at: string;
  last_seq?: number;
  read_seq?: number;
  unread_count?: number;
  last_message_at?: string | null;
}

export interface MessageView {
  message_id: string;
  seq: number;
  created_at: string;
  deleted?: boolean;
  conversation_id: string;
  sender_id: string;
  [key: string]: unknown;
}

export interface SendPayload {
  envelope: Envelope;
  client_id: string;
  file_ids?: string[];
}

/** How an envelope reaches the server: the WebSocket's send/ack, or POST …/messages. */
export type Transport = (conversationId: string, payload: SendPayload) => Promise<{ message_id: string; seq: number; created_at?: string }>;

export interface Sent {
  message_id: string;
  seq: number;
  created_at: string;
  envelope: Envelope;
  body: MessageBody;
}

export type AnchorState = "pending" | "anchored" | "verified" | "invalid";

export interface ChatMessage {
  id: string;
  seq: number;
  conversationId: string;
  senderId: string;
  createdAt: string;
  deleted: boolean;
  body: MessageBody | null;
  error: string | null;
  errorCode: string | null;
  envelope: Envelope | null;
  anchor: AnchorState;
  /** False for v1 envelopes: recipients cannot prove they all decrypted the same text. */
  keyCommitting: boolean;
}

export interface FileInfo {
  file_id: string;
  cid: string;
  key: string;
  name: string;
  mime: string;
  size: number;
  sha256: string;
}

export interface KeyDirectoryEntry {
  userId: string;
  keys: PublicDeviceKey[];
  createdAt: Map<string, string>;
  /** key id → "logged" (proof checks out), "pending", "invalid" */
  logStatus: Map<string, "logged" | "pending" | "invalid">;
}

export interface KeyChange {
  userId: string;
  from: string[];
  to: string[];
}

type Listener<T> = (value: T) => void;

export class Emitter<T> {
  private fns = new Set<Listener<T>>();
  on(fn: Listener<T>): () => void {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }
  emit(value: T): void {
    for (const fn of this.fns) fn(value);
  }
}

function keyLogDigest(userId: string, k: { key_id: string; x25519_public: string; ed25519_public: string }): Promise<string> {
  return sha256(canonicalJson({ user_id: userId, key_id: k.key_id, x25519_public: k.x25519_public, ed25519_public: k.ed25519_public })).then(toHex);
}

export function nowIso(): string {
  return new Date().toISOString();
}

export class Messenger {
  readonly keyChanged = new Emitter<KeyChange>();
  readonly namesChanged = new Emitter<string>();
  private directory = new Map<string, Promise<KeyDirectoryEntry>>();
  private names = new Map<string, string>();
  private nameLookups = new Map<string, Promise<void>>();
  private userLookupAvailable: boolean | null = null;
  private lookupProbe: Promise<void> = Promise.resolve();
  suite: string = SUITE_AES256GCM;

  private constructor(
    readonly api: ApiClient,
    readonly me: UserPublic,
    private current: DeviceKeys,
    private retired: DeviceKeys[],
  ) {
    this.names.set(me.id, me.display_name);
  }

  /** This browser's device keys (replaced by `rotateKeys`). */
  get device(): DeviceKeys {
    return this.current;
  }

  /** Replace this device's keys: publish new ones, keep the old private keys (non-extractable)
   *  to read the history sealed to them, and revoke the old public key. Peers see a key change. */
  async rotateKeys(): Promise<DeviceKeys> {
    const old = this.current;
    const fresh = await generateDeviceKeys(false);
    await this.api.put("/keys/me", publishBody(fresh, SUITES));
    this.retired = [...this.retired, old];
    await saveRetired(this.me.id, this.retired);
    await saveDevice(this.me.id, fresh);
    this.current = fresh;
    this.forgetKeys(this.me.id);
    try {
      await this.api.delete(`/keys/me/${encodeURIComponent(old.keyId)}`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
    }
    return fresh;
  }

  private ownKey(keyId: string): DeviceKeys | undefined {
    return [this.current, ...this.retired].find((d) => d.keyId === keyId);
  }

  /** Load this browser's device keys for the account (or generate them) and publish them. */
  static async start(api: ApiClient, me: UserPublic): Promise<Messenger> {
    let device = await loadDevice(me.id);
    if (!device) {
      device = await generateDeviceKeys(false);
      await saveDevice(me.id, device);
    }
    try {
      await api.put("/keys/me", publishBody(device, SUITES));
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== "key_revoked") throw err;
      // This device's key was revoked elsewhere: start over with a fresh one.
      device = await generateDeviceKeys(false);
      await saveDevice(me.id, device);
      await api.put("/keys/me", publishBody(device, SUITES));
    }
    return new Messenger(api, me, device, await loadRetired(me.id));
  }

  // ---------------------------------------------------------------- names

  rememberName(userId: string, name: string | null | undefined): void {
    if (!name || this.names.get(userId) === name) return;
    this.names.set(userId, name);
    this.namesChanged.emit(userId);
  }

  nameOf(userId: string): string {
    const known = this.names.get(userId);
    if (known) return known;
    void this.lookupName(userId);
    return `User ${userId.slice(0, 8)}`;
  }

  private lookupName(userId: string): Promise<void> {
    if (this.userLookupAvailable === false) return Promise.resolve();
    let p = this.nameLookups.get(userId);
    if (!p) {
      // Until one lookup has shown that the gateway has GET /users/{id}, ask one at a time.
      const before = this.userLookupAvailable === null ? this.lookupProbe : Promise.resolve();
      p = before.then(() => (this.userLookupAvailable === false ? undefined : this.fetchName(userId)));
      if (this.userLookupAvailable === null) this.lookupProbe = p;
      this.nameLookups.set(userId, p);
    }
    return p;
  }

  private async fetchName(userId: string): Promise<void> {
    try {
      const u: any = await this.api.get(`/users/${encodeURIComponent(userId)}`);
      this.userLookupAvailable = true;
      this.rememberName(userId, u?.display_name);
    } catch (err) {
      // A gateway without GET /users/{id}: stop asking (names then come from searches only).
      if (err instanceof ApiError && (err.status === 405 || (err.status === 404 && err.code === "not_found"))) {
        if (this.userLookupAvailable === null) this.userLookupAvailable = false;
      }
    }
  }

  async searchUsers(q: string): Promise<{ user_id: string; display_name: string }[]> {
    const res = await this.api.get(`/users?q=${encodeURIComponent(q)}`);
    const users: { user_id?: string; id?: string; display_name: string }[] = Array.isArray(res) ? res : (res?.users ?? []);
    const hits = users.map((u) => ({ user_id: (u.user_id ?? u.id)!, display_name: u.display_name }));
    for (const u of hits) this.rememberName(u.user_id, u.display_name);
    return hits;
  }

  // ---------------------------------------------------------------- key directory

  /** A user's published device keys (cached; `refresh` asks the server again). Each key id is
   *  recomputed from its keys, each key proof is checked, and peers' keys are pinned. */
  keysOf(userId: string, refresh = false): Promise<KeyDirectoryEntry> {
    let entry = refresh ? undefined : this.directory.get(userId);
    if (!entry) {
      entry = this.fetchKeys(userId);
      this.directory.set(userId, entry);
      entry.catch(() => this.directory.delete(userId));
    }
    return entry;
  }

  forgetKeys(userId: string): void {
    this.directory.delete(userId);
  }

  private async fetchKeys(userId: string): Promise<KeyDirectoryEntry> {
    const res = await this.api.get(`/keys/${encodeURIComponent(userId)}`);
    const keys: PublicDeviceKey[] = [];
    const createdAt = new Map<string, string>();
    const logStatus = new Map<string, "logged" | "pending" | "invalid">();
    for (const k of res?.keys ?? []) {
      try {
        keys.push(await publicKeyFromDirectory(userId, k));
        createdAt.set(k.key_id, k.created_at);
      } catch {
        continue; // a key whose id does not match its bytes is never used
      }
      const proof: ProofObject | undefined = res?.proofs?.[k.key_id];
      if (!proof) logStatus.set(k.key_id, "pending");
      else {
        const check = await verifyProof(proof, await keyLogDigest(userId, k));
        logStatus.set(k.key_id, check.ok ? "logged" : check.reason === "entry not yet in the log" ? "pending" : "invalid");
      }
    }
    if (userId !== this.me.id) await this.checkPins(userId, keys.map((k) => k.keyId));
    return { userId, keys, createdAt, logStatus };
  }

  private async checkPins(peer: string, current: string[]): Promise<void> {
    const sorted = [...new Set(current)].sort();
    const pin = await loadPin(this.me.id, peer);
    if (!pin) {
      if (sorted.length) await savePin({ id: `${this.me.id}:${peer}`, keyIds: sorted, pinnedAt: nowIso(), changed: null });
      return;
    }
    const same = pin.keyIds.length === sorted.length && pin.keyIds.every((k, i) => k === sorted[i]);
    if (same) {
      if (pin.changed) await savePin({ ...pin, changed: null });
      return;
    }
    const from = pin.changed?.from ?? pin.keyIds;
    await savePin({ ...pin, changed: { from, to: sorted, seenAt: nowIso() }, verified: false });
    this.keyChanged.emit({ userId: peer, from, to: sorted });
  }

  pinOf(peer: string): Promise<PinRecord | null> {
    return loadPin(this.me.id, peer);
  }

  /** The user saw the change: pin the current keys. */
  async acceptKeys(peer: string, verified = false): Promise<void> {
    const entry = await this.keysOf(peer);
    await savePin({ id: `${this.me.id}:${peer}`, keyIds: entry.keys.map((k) => k.keyId).sort(), pinnedAt: nowIso(), changed: null, verified });
  }

  async safetyNumberWith(peer: string): Promise<{ number: string; mine: string[]; theirs: string[] }> {
    const [mine, theirs] = await Promise.all([this.keysOf(this.me.id, true), this.keysOf(peer, true)]);
    const myIds = mine.keys.map((k) => k.keyId);
    if (!myIds.includes(this.device.keyId)) myIds.push(this.device.keyId);
    const theirIds = theirs.keys.map((k) => k.keyId);
    if (theirIds.length === 0) throw new Error(`${this.nameOf(peer)} has not published any keys yet.`);
    return { number: await safetyNumber(this.me.id, myIds, peer, theirIds), mine: myIds.sort(), theirs: theirIds.sort() };
  }

  // ---------------------------------------------------------------- conversations

  /** Every conversation, most recently active first: the server pages the list (`has_more`, `next_cursor`). */
  async conversations(): Promise<ConversationSummary[]> {
    const all: ConversationSummary[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 1000; page++) {
      const res: any = await this.api.get(cursor ? `/conversations?cursor=${encodeURIComponent(cursor)}` : "/conversations");
      all.push(...(res?.conversations ?? []));
      cursor = res?.has_more ? (res.next_cursor ?? null) : null;
      if (!cursor) break;
    }
    return all;
  }

  async startConversation(memberIds: string[], title?: string): Promise<ConversationSummary> {
    return this.api.post("/conversations", title ? { member_ids: memberIds, title } : { member_ids: memberIds });
  }

  /** Up to `limit` (default 50) messages ascending: the first after `after_seq`, else the last before
   *  `before_seq`. A page may hold fewer than asked (it must fit one bus reply): follow `has_more`. */
  async history(conversationId: string, params: { after_seq?: number; before_seq?: number; limit?: number }): Promise<MessageView[]> {
    const want = params.limit ?? 50;
    let { after_seq, before_seq } = params;
    let out: MessageView[] = [];
    while (out.length < want) {
      const q = new URLSearchParams({ limit: String(want - out.length) });
      if (after_seq !== undefined) q.set("after_seq", String(after_seq));
      if (before_seq !== undefined) q.set("before_seq", String(before_seq));
      const res: any = await this.api.get(`/conversations/${encodeURIComponent(conversationId)}/messages?${q}`);
      const got: MessageView[] = res?.messages ?? [];
      if (after_seq !== undefined) {
        out = out.concat(got);
        after_seq = got.at(-1)?.seq ?? after_seq;
      } else {
        out = got.concat(out);
        before_seq = got[0]?.seq ?? before_seq;
      }
      if (!got.length || !res?.has_more) break;
    }
    return out;
  }

  private async recipients(members: string[], refresh: boolean): Promise<PublicDeviceKey[]> {
    const devices: PublicDeviceKey[] = [];
    for (const member of new Set([...members, this.me.id])) devices.push(...(await this.keysOf(member, refresh)).keys);
    if (!devices.some((d) => d.userId === this.me.id && d.keyId === this.device.keyId)) {
      devices.push({ userId: this.me.id, keyId: this.device.keyId, x25519Public: this.device.x25519Public, ed25519Public: this.device.ed25519Public });
    }
    return devices;
  }

  /** Seal `body` to every member device (own devices included) and post it; retried once with
   *  fresh keys when the server says a member device is missing (422). */
  async send(conv: ConversationSummary, body: MessageBody, fileIds: string[] = [], post: Transport = this.httpPost): Promise<Sent> {
    const clientId = crypto.randomUUID();
    for (let attempt = 0; ; attempt++) {
      const missing = [];
      for (const m of conv.members) if ((await this.keysOf(m, attempt > 0)).keys.length === 0 && m !== this.me.id) missing.push(m);
      if (missing.length) throw new Error(`${missing.map((m) => this.nameOf(m)).join(", ")} has no published keys yet and cannot receive encrypted messages.`);
      const envelope = await sealEnvelope(body, {
        sender: this.device,
        senderId: this.me.id,
        conversationId: conv.conversation_id,
        recipients: await this.recipients(conv.members, attempt > 0),
        suite: this.suite as Envelope["suite"],
      });
      try {
        const payload: SendPayload = { envelope, client_id: clientId };
        if (fileIds.length) payload.file_ids = fileIds;
        const result = await post(conv.conversation_id, payload);
        return { ...result, created_at: result.created_at ?? nowIso(), envelope, body };
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 422 || attempt > 0) throw err;
      }
    }
  }

  /** POST …/messages: the transport when the WebSocket is not there. */
  readonly httpPost: Transport = (conversationId, payload) => this.api.post(`/conversations/${encodeURIComponent(conversationId)}/messages`, payload);

  sendText(conv: ConversationSummary, text: string, post?: Transport): Promise<Sent> {
    return this.send(conv, { type: "text", text, sent_at: nowIso() }, [], post);
  }

  /** A message this device just sent, as the views show it (no need to decrypt it again). */
  sentMessage(conv: ConversationSummary, sent: Sent): ChatMessage {
    return {
      id: sent.message_id,
      seq: sent.seq,
      conversationId: conv.conversation_id,
      senderId: this.me.id,
      createdAt: sent.created_at,
      deleted: false,
      body: sent.body,
      error: null,
      errorCode: null,
      envelope: sent.envelope,
      anchor: "pending",
      keyCommitting: sent.envelope.v !== 1,
    };
  }

  private async senderKey(senderId: string, keyId: string): Promise<PublicDeviceKey> {
    const own = senderId === this.me.id ? this.ownKey(keyId) : undefined;
    if (own) return { userId: senderId, keyId, x25519Public: own.x25519Public, ed25519Public: own.ed25519Public };
    for (const refresh of [false, true]) {
      const found = (await this.keysOf(senderId, refresh)).keys.find((k) => k.keyId === keyId);
      if (found) return found;
    }
    throw new EnvelopeError("bad_signature", "the sender's key is not in the directory");
  }

  /** Verify and decrypt one stored or delivered message. Never throws: failures are shown. */
  async open(view: MessageView): Promise<ChatMessage> {
    const msg: ChatMessage = {
      id: view.message_id,
      seq: view.seq,
      conversationId: view.conversation_id,
      senderId: view.sender_id,
      createdAt: view.created_at,
      deleted: Boolean(view.deleted),
      body: null,
      error: null,
      errorCode: null,
      envelope: null,
      anchor: "pending",
      keyCommitting: false,
    };
    if (msg.deleted) return msg;
    const envelope = pickEnvelope(view);
    msg.envelope = envelope;
    if (envelope.suite !== undefined && !SUITES.includes(envelope.suite)) {
      msg.errorCode = "unsupported_suite";
      msg.error = `This message uses an unsupported cipher suite (${String(envelope.suite)}).`;
      return msg;
    }
    try {
      const sender = await this.senderKey(envelope.sender_id, envelope.sender_key_id);
      const sealedTo = envelope.recipients.find((r) => r.user_id === this.me.id && this.ownKey(r.key_id));
      const device = (sealedTo && this.ownKey(sealedTo.key_id)) ?? this.device;
      const opened = await openEnvelopeDetailed(envelope, { device, userId: this.me.id, sender });
      msg.body = opened.body;
      msg.keyCommitting = opened.keyCommitting;
    } catch (err) {
      msg.errorCode = err instanceof EnvelopeError ? err.code : "error";
      msg.error =
        msg.errorCode === "not_a_recipient"
          ? "This message was not encrypted for this device (it was sent before this device's keys existed)."
          : msg.errorCode === "bad_signature"
            ? "The signature of this message does not verify: it may have been forged or altered."
            : msg.errorCode === "decryption_failed"
              ? "This message could not be decrypted."
              : msg.errorCode === "bad_key_commit"
                ? "This message was not shown: its sender gave this device a different key than the one the message commits to (other recipients may see another text)."
              : `This message cannot be read: ${err instanceof Error ? err.message : String(err)}`;
    }
    return msg;
  }

  // ---------------------------------------------------------------- proofs

  async proofOf(msg: ChatMessage): Promise<{ proof: ProofObject; check: ProofCheck; digest: string | null }> {
    const proof: ProofObject = await this.api.get(`/messages/${encodeURIComponent(msg.id)}/proof`);
    const digest = msg.envelope ? await envelopeDigest(msg.envelope) : null;
    const check = await verifyProof(proof, digest ?? undefined);
    return { proof, check, digest };
  }

  async ledgerInfo(): Promise<any> {
    return this.api.get("/ledger/info", { auth: false });
  }

  // ---------------------------------------------------------------- files

  /** Encrypt a file in the browser (STREAM, 64 KiB chunks), upload it, and send the key inside an
   *  encrypted file message. Progress: 0..0.5 while encrypting, 0.5..1 while uploading. */
  async sendFile(conv: ConversationSummary, file: File, onProgress: (fraction: number, phase: string) => void, post?: Transport): Promise<Sent> {
    const key = generateFileKey();
    const enc = await StreamEncryptor.create(key);
    const parts: BlobPart[] = [enc.header];
    const reader = file.stream().getReader();
    let done = 0;
    const hasher = new IncrementalSha256();
    for (;;) {
      const { done: end, value } = await reader.read();
      if (end) break;
      hasher.update(value);
      for (const c of await enc.feed(value)) parts.push(c);
      done += value.length;
      onProgress(file.size ? (0.5 * done) / file.size : 0.5, "Encrypting");
    }
    parts.push(await enc.finish());
    const blob = new Blob(parts, { type: "application/octet-stream" });
    if (blob.size !== ciphertextSize(file.size)) throw new Error("The file changed while it was being encrypted.");
    const uploaded: { file_id: string; cid: string } = await this.api.upload(`/files?conversation_id=${encodeURIComponent(conv.conversation_id)}`, blob, (f) =>
      onProgress(0.5 + 0.5 * f, "Uploading"),
    );
    const info: FileInfo = {
      file_id: uploaded.file_id,
      cid: uploaded.cid,
      key: b64e(key),
      name: file.name,
      mime: file.type || "application/octet-stream",
      size: file.size,
      sha256: await hasher.hex(),
    };
    return this.send(conv, { type: "file", file: info, sent_at: nowIso() }, [uploaded.file_id], post);
  }

  /** Download and decrypt a file; the result exists only if every chunk authenticated and the
   *  plaintext matches the sender's SHA-256. */
  async fetchFile(info: FileInfo, onProgress: (fraction: number) => void): Promise<Blob> {
    const dec = await StreamDecryptor.create(b64d(info.key));
    const parts: Bytes[] = [];
    await this.api.download(
      `/files/${encodeURIComponent(info.file_id)}`,
      async (chunk) => {
        parts.push(...(await dec.feed(chunk)));
      },
      onProgress,
      ciphertextSize(info.size),
    );
    parts.push(await dec.finish());
    const hasher = new IncrementalSha256();
    for (const p of parts) hasher.update(p);
    if ((await hasher.hex()) !== info.sha256) throw new Error("The decrypted file does not match the sender's SHA-256.");
    return new Blob(parts, { type: info.mime || "application/octet-stream" });
  }
}

/** WebCrypto has no incremental hashing; files are hashed chunk by chunk in bounded memory. */
class IncrementalSha256 {
  private h = nobleSha256.create();
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  async hex(): Promise<string> {
    return toHex(this.h.digest());
  }
}

