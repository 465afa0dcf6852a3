/**
 * The client's messaging logic, independent of the DOM: device keys, the key directory with
 * pinning and key-change detection, sealing to every member device, opening and verifying
 * messages, proofs, files. Views subscribe to its events.
 */
import { ApiError, type ApiClient } from "./api";
import type { ConversationPublic, ConversationSummary as WireConversationSummary, MessageView, PostMessageBody, UserHit, UserPublic } from "./wire";
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
import { LedgerTrust } from "./ledger";
import { confirmPin, reconcilePin, unconfirmedOf } from "./pins";

/** A conversation as the client holds it: created or changed ones (`ConversationPublic`) lack the
 *  counters the list (`ConversationSummary`) has until it is fetched again. */
export type ConversationSummary = ConversationPublic & Partial<Pick<WireConversationSummary, "last_seq" | "read_seq" | "unread_count" | "last_message_at">>;

export type { MessageView };

/** A send body (`POST …/messages` or the `send` frame) with the envelope sealed here. */
export type SendPayload = Omit<PostMessageBody, "envelope" | "client_id"> & { envelope: Envelope; client_id: string };

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

/** "anchored": inclusion proven under a head anchored on the pinned ledger; "logged": in the log
 *  (inclusion proven), not anchored yet or the chain could not be asked; "pending": the ledger has
 *  not logged it yet; "invalid": the proof is of something else, fails, or names another ledger.
 *  Invalid keys are refused; pending and logged ones are used and marked (the ledger lags seconds
 *  behind a new device, and the pin already stops a silent one). */
export type KeyLogStatus = "anchored" | "logged" | "pending" | "invalid";

export interface KeyDirectoryEntry {
  userId: string;
  keys: PublicDeviceKey[];
  createdAt: Map<string, string>;
  logStatus: Map<string, KeyLogStatus>;
  logReason: Map<string, string>;
}

export interface KeyChange {
  userId: string;
  from: string[];
  to: string[];
  added: string[];
  removed: string[];
}

/** Sending refused by a trust rule: `unconfirmed_devices` or `key_proof_invalid`. */
export class TrustError extends Error {
  constructor(
    readonly code: "unconfirmed_devices" | "key_proof_invalid",
    message: string,
    readonly userId: string,
  ) {
    super(message);
  }
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
  /** A user confirmed or revoked devices of this account (user id). */
  readonly trustChanged = new Emitter<string>();
  readonly ledger: LedgerTrust;
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
    this.ledger = new LedgerTrust(api, me.id);
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
    await this.api.publishKey(publishBody(fresh, SUITES));
    this.retired = [...this.retired, old];
    await saveRetired(this.me.id, this.retired);
    await saveDevice(this.me.id, fresh);
    this.current = fresh;
    this.forgetKeys(this.me.id);
    try {
      await this.api.revokeKey(old.keyId);
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
      await api.publishKey(publishBody(device, SUITES));
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== "key_revoked") throw err;
      // This device's key was revoked elsewhere: start over with a fresh one.
      device = await generateDeviceKeys(false);
      await saveDevice(me.id, device);
      await api.publishKey(publishBody(device, SUITES));
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
      const u = await this.api.lookupUser(userId);
      this.userLookupAvailable = true;
      this.rememberName(userId, u.display_name);
    } catch (err) {
      // A gateway without GET /users/{id}: stop asking (names then come from searches only).
      if (err instanceof ApiError && (err.status === 405 || (err.status === 404 && err.code === "not_found"))) {
        if (this.userLookupAvailable === null) this.userLookupAvailable = false;
      }
    }
  }

  async searchUsers(q: string): Promise<UserHit[]> {
    const hits = await this.api.searchUsers(q);
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
    const res = await this.api.keysOf(userId);
    const keys: PublicDeviceKey[] = [];
    const createdAt = new Map<string, string>();
    const logStatus = new Map<string, KeyLogStatus>();
    const logReason = new Map<string, string>();
    for (const k of res.keys) {
      try {
        keys.push(await publicKeyFromDirectory(userId, k));
        createdAt.set(k.key_id, k.created_at);
      } catch {
        continue; // a key whose id does not match its bytes is never used
      }
      const [status, reason] = await this.keyLogStatus(userId, k, res.proofs[k.key_id]);
      logStatus.set(k.key_id, status);
      logReason.set(k.key_id, reason);
    }
    await this.checkPins(userId, keys.map((k) => k.keyId));
    return { userId, keys, createdAt, logStatus, logReason };
  }

  /** What the transparency log says about one device key (see `KeyLogStatus`). */
  private async keyLogStatus(userId: string, k: { key_id: string; x25519_public: string; ed25519_public: string }, proof: ProofObject | undefined): Promise<[KeyLogStatus, string]> {
    if (!proof || !proof.entry) return ["pending", "the ledger has not logged this key yet"];
    if (proof.entry.kind !== "key" || proof.entry.id !== k.key_id) return ["invalid", `the proof is of ${proof.entry.kind} ${proof.entry.id}, not of this key`];
    const check = await verifyProof(proof, await keyLogDigest(userId, k));
    if (!check.ok) return check.reason === "entry not yet in the log" ? ["pending", "not in the log yet"] : ["invalid", check.reason ?? "the proof does not verify"];
    if (proof.status !== "anchored") return ["logged", "in the log, not anchored on chain yet"];
    const verdict = await this.ledger.verify(proof, check.leafHash);
    if (verdict.ok) return ["anchored", "anchored on the pinned ledger"];
    if (verdict.code === "chain_unreachable" || verdict.code === "no_rpc") return ["logged", `in the log; ${verdict.detail}`];
    return ["invalid", verdict.detail];
  }

  private ownIds(userId: string): string[] {
    return userId === this.me.id ? [this.device.keyId] : [];
  }

  private async checkPins(userId: string, current: string[]): Promise<void> {
    const stored = await loadPin(this.me.id, userId);
    const update = reconcilePin(`${this.me.id}:${userId}`, stored, current, this.ownIds(userId), nowIso());
    if (update.pin && JSON.stringify(update.pin) !== JSON.stringify(stored)) await savePin(update.pin);
    if (update.added.length || update.removed.length) {
      this.keyChanged.emit({ userId, from: stored?.keyIds ?? [], to: [...new Set(current)].sort(), added: update.added, removed: update.removed });
    }
  }

  pinOf(peer: string): Promise<PinRecord | null> {
    return loadPin(this.me.id, peer);
  }

  /** Devices of `userId` published but not confirmed: nothing is sealed to them. */
  async unconfirmed(userId: string): Promise<string[]> {
    const entry = await this.keysOf(userId);
    return unconfirmedOf(await loadPin(this.me.id, userId), entry.keys.map((k) => k.keyId), this.ownIds(userId));
  }

  /** The user checked the devices of `peer` (or their own): confirm the ones published now. */
  async acceptKeys(peer: string, verified = false): Promise<void> {
    const entry = await this.keysOf(peer);
    await savePin(confirmPin(`${this.me.id}:${peer}`, entry.keys.map((k) => k.keyId), this.ownIds(peer), nowIso(), verified));
    this.trustChanged.emit(peer);
  }

  /** Revoke a device of this account (the server asks for recent authentication). */
  async revokeDevice(keyId: string): Promise<void> {
    await this.api.revokeKey(keyId);
    await this.keysOf(this.me.id, true);
    this.trustChanged.emit(this.me.id);
  }

  /** Refuse to seal to `recipients` when a key's log proof fails or a device is not confirmed
   *  (the own account's too). */
  private async assertSealable(recipients: PublicDeviceKey[]): Promise<void> {
    const unconfirmed = new Set<string>();
    for (const m of new Set(recipients.map((r) => r.userId))) {
      const entry = await this.keysOf(m);
      const own = this.ownIds(m);
      const pin = await loadPin(this.me.id, m);
      const ids = recipients.filter((r) => r.userId === m && !own.includes(r.keyId)).map((r) => r.keyId);
      for (const keyId of ids) {
        if (entry.logStatus.get(keyId) === "invalid") throw new TrustError("key_proof_invalid", `The transparency-log proof of a key of ${this.nameOf(m)} does not verify (${entry.logReason.get(keyId)}). Nothing was sent.`, m);
      }
      if (unconfirmedOf(pin, ids, own).length) unconfirmed.add(m);
    }
    if (unconfirmed.size) {
      const who = [...unconfirmed].map((u) => (u === this.me.id ? "your account" : this.nameOf(u))).join(", ");
      throw new TrustError("unconfirmed_devices", `A new device was added to ${who} and is not confirmed yet: confirm it (or revoke it) above before sending.`, [...unconfirmed][0]!);
    }
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
      const res = await this.api.conversations(cursor);
      all.push(...res.conversations);
      cursor = res.has_more ? (res.next_cursor ?? null) : null;
      if (!cursor) break;
    }
    return all;
  }

  async startConversation(memberIds: string[], title?: string): Promise<ConversationSummary> {
    return this.api.createConversation(title ? { member_ids: memberIds, title } : { member_ids: memberIds });
  }

  /** Up to `limit` (default 50) messages ascending: the first after `after_seq`, else the last before
   *  `before_seq`. A page may hold fewer than asked (it must fit one bus reply): follow `has_more`. */
  async history(conversationId: string, params: { after_seq?: number; before_seq?: number; limit?: number }): Promise<MessageView[]> {
    const want = params.limit ?? 50;
    let { after_seq, before_seq } = params;
    let out: MessageView[] = [];
    while (out.length < want) {
      const res = await this.api.history(conversationId, { limit: want - out.length, after_seq, before_seq });
      const got = res.messages;
      if (after_seq !== undefined) {
        out = out.concat(got);
        after_seq = got.at(-1)?.seq ?? after_seq;
      } else {
        out = got.concat(out);
        before_seq = got[0]?.seq ?? before_seq;
      }
      if (!got.length || !res.has_more) break;
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
      const recipients = await this.recipients(conv.members, attempt > 0);
      await this.assertSealable(recipients);
      const envelope = await sealEnvelope(body, {
        sender: this.device,
        senderId: this.me.id,
        conversationId: conv.conversation_id,
        recipients,
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
  readonly httpPost: Transport = (conversationId, payload) => this.api.postMessage(conversationId, payload);

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
      const entry = await this.keysOf(senderId, refresh);
      const found = entry.keys.find((k) => k.keyId === keyId);
      if (!found) continue;
      if (entry.logStatus.get(keyId) === "invalid") throw new EnvelopeError("bad_signature", `the sender's key is not proven by the log: ${entry.logReason.get(keyId)}`);
      return found;
    }
    throw new EnvelopeError("bad_signature", "the sender's key is not in the directory");
  }

  /** Verify and decrypt one stored or delivered message shown in `conversationId`. Never
   *  throws: failures are shown. A message whose signed header names another conversation was
   *  moved here (spliced in by the server) and is shown as invalid, never opened. */
  async open(view: MessageView, conversationId: string): Promise<ChatMessage> {
    const msg: ChatMessage = {
      id: view.message_id,
      seq: view.seq,
      conversationId,
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
    if (envelope.conversation_id !== conversationId) {
      msg.errorCode = "wrong_conversation";
      msg.error = "This message was signed for another conversation and moved here by the server: it is not shown.";
      return msg;
    }
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
    const proof = await this.api.messageProof(msg.id);
    const digest = msg.envelope ? await envelopeDigest(msg.envelope) : null;
    const check = await verifyProof(proof, digest ?? undefined);
    // A tombstone's entry carries the deleted message's digest: the digest alone is not enough.
    const entry = proof.entry;
    if (entry && (entry.kind !== "message" || entry.id !== msg.id)) {
      return { proof, check: { ok: false, leafHash: check.leafHash, reason: `this is the proof of ${entry.kind} ${entry.id}, not of message ${msg.id}` }, digest };
    }
    return { proof, check, digest };
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
    const uploaded = await this.api.uploadFile(conv.conversation_id, blob, (f) =>
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
    await this.api.downloadFile(
      info.file_id,
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

