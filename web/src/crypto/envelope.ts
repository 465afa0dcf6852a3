/**
 * Message envelopes v2 (docs/envelope.md) and v1 (SPEC §5), byte-compatible with the Python SDK
 * (chainchat.crypto.envelope). Senders produce v2; v1 envelopes still open, flagged as not
 * key-committing.
 *
 * - body = canonical JSON of {type, text|file, sent_at}; aad = canonical JSON of the header
 *   {v, suite, conversation_id, sender_id, sender_key_id};
 * - aes256gcm: ciphertext = AES-256-GCM(K, nonce[12], body, aad); blowfish: see ./blowfish;
 * - K is wrapped to every recipient device with HPKE base mode, DHKEM(X25519, HKDF-SHA256),
 *   HKDF-SHA256, AES-256-GCM (@hpke/core, one seal per context): v2 info = "chainchat/v2/wrap" ||
 *   aad with an empty HPKE aad; v1 info = "chainchat/v1/wrap" with HPKE aad = aad;
 * - v2 only: key_commit = HMAC-SHA256(K, "chainchat/v1/commit" || nonce), signed with the rest and
 *   checked against the unwrapped K before decrypting (AES-GCM is not key-committing: without it
 *   one signed envelope could open to different texts for different recipients);
 * - signature = Ed25519(SHA-256(canonical JSON of the envelope without "signature")).
 *
 * Opening checks, in order: structure, version and suite, signature against the sender's published
 * key, own recipient entry, key unwrap, key commitment (v2), content decryption; each failure is an
 * EnvelopeError with the same stable code as the Python SDK.
 */
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { b64d, b64dExact, b64e } from "./b64";
import { BLOWFISH_NONCE_SIZE, HMAC_TAG_SIZE, blowfishDecrypt, blowfishEncrypt } from "./blowfish";
import { concat, copy, equalBytes, fromUtf8, hmacSha256, randomBytes, sha256, toHex, utf8, type Bytes } from "./bytes";
import { canonicalJson } from "./canonical";
import { SUITES, SUITE_AES256GCM, ed25519Sign, ed25519Verify, isKeyId, type DeviceKeys, type PublicDeviceKey, type Suite } from "./keys";

export const HPKE_INFO_V1 = utf8("chainchat/v1/wrap");
export const HPKE_INFO_V2 = utf8("chainchat/v2/wrap");
export const KEY_COMMIT_LABEL = utf8("chainchat/v1/commit");
export const ENVELOPE_VERSION = 2; // what senders produce
export const ENVELOPE_VERSIONS = [1, 2] as const;
export const KEY_COMMIT_SIZE = 32;
export const AES_GCM_NONCE_SIZE = 12;
export const MAX_ENVELOPE_BYTES = 64 * 1024;
const HEADER_FIELDS = ["v", "suite", "conversation_id", "sender_id", "sender_key_id"] as const;
const ENVELOPE_FIELDS = [...HEADER_FIELDS, "key_commit", "nonce", "ciphertext", "recipients", "signature"] as const;

export type EnvelopeErrorCode =
  | "bad_signature"
  | "not_a_recipient"
  | "decryption_failed"
  | "bad_key_commit"
  | "unsupported_suite"
  | "malformed_envelope"
  | "envelope_too_large";

export class EnvelopeError extends Error {
  constructor(
    readonly code: EnvelopeErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface Recipient {
  user_id: string;
  key_id: string;
  enc: string;
  wrapped_key: string;
}

export type EnvelopeVersion = (typeof ENVELOPE_VERSIONS)[number];

export interface Envelope {
  v: EnvelopeVersion;
  suite: Suite;
  conversation_id: string;
  sender_id: string;
  sender_key_id: string;
  /** v2 only (absent in v1): HMAC-SHA256(K, "chainchat/v1/commit" || nonce). */
  key_commit?: string;
  nonce: string;
  ciphertext: string;
  recipients: Recipient[];
  signature: string;
}

export type MessageBody = { type: string; [key: string]: unknown };

/** What openEnvelopeDetailed returns: the body and how it was protected. */
export interface OpenedEnvelope {
  body: MessageBody;
  version: EnvelopeVersion;
  /** v2: every recipient provably decrypted the same text; false for v1 envelopes. */
  keyCommitting: boolean;
}

/** Every random input of sealing; injected only to reproduce the shared test vectors. */
export interface SealRandomness {
  contentKey: Bytes;
  nonce: Bytes;
  ephemeralIkm: Bytes[];
}

let hpkeSuite: CipherSuite | null = null;
function hpke(): CipherSuite {
  hpkeSuite ??= new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
  return hpkeSuite;
}

type Header = Pick<Envelope, (typeof HEADER_FIELDS)[number]>;

export function headerAad(header: Header): Bytes {
  return canonicalJson(Object.fromEntries(HEADER_FIELDS.map((k) => [k, header[k]])));
}

/** HPKE info of every key wrap: v1 "chainchat/v1/wrap"; v2 "chainchat/v2/wrap" || headerAad. */
export function wrapInfo(header: Header): Bytes {
  return header.v === 1 ? HPKE_INFO_V1 : concat(HPKE_INFO_V2, headerAad(header));
}

/** The HPKE aad of every key wrap: the header in v1, empty in v2 (bound through the info). */
function wrapAad(header: Header): Bytes {
  return header.v === 1 ? headerAad(header) : new Uint8Array(0);
}

/** v2 key_commit: HMAC-SHA256(K, "chainchat/v1/commit" || nonce). */
export function keyCommitment(contentKey: Bytes, nonce: Bytes): Promise<Bytes> {
  return hmacSha256(contentKey, concat(KEY_COMMIT_LABEL, nonce));
}

/** The envelope fields only (drops server metadata such as message_id, seq, created_at). */
export function pickEnvelope(obj: object): Envelope {
  const fields = obj as Record<string, unknown>;
  return Object.fromEntries(ENVELOPE_FIELDS.filter((k) => k in fields).map((k) => [k, fields[k]])) as unknown as Envelope;
}

export async function signingDigest(envelope: Omit<Envelope, "signature"> | Envelope): Promise<Bytes> {
  const unsigned: Record<string, unknown> = { ...envelope };
  delete unsigned.signature;
  return sha256(canonicalJson(unsigned));
}

/** Hex SHA-256 of the canonical JSON of the whole envelope: its `message` log entry digest. */
export async function envelopeDigest(envelope: Envelope): Promise<string> {
  return toHex(await sha256(canonicalJson(pickEnvelope(envelope as unknown as Record<string, unknown>))));
}

function freshRandomness(suite: Suite, recipients: number): SealRandomness {
  const nonce = suite === SUITE_AES256GCM ? randomBytes(AES_GCM_NONCE_SIZE) : new Uint8Array(BLOWFISH_NONCE_SIZE);
  if (suite !== SUITE_AES256GCM) nonce.set(randomBytes(4), 0); // 4 random bytes || 00000000
  return { contentKey: randomBytes(32), nonce, ephemeralIkm: Array.from({ length: recipients }, () => randomBytes(32)) };
}

async function encryptContent(suite: Suite, key: Bytes, nonce: Bytes, body: Bytes, aad: Bytes): Promise<Bytes> {
  if (suite === SUITE_AES256GCM) {
    const k = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
    return copy(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, k, body));
  }
  return blowfishEncrypt(key, nonce, body, aad);
}

async function decryptContent(suite: Suite, key: Bytes, nonce: Bytes, data: Bytes, aad: Bytes): Promise<Bytes> {
  if (suite === SUITE_AES256GCM) {
    try {
      const k = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
      return copy(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, k, data));
    } catch {
      throw new EnvelopeError("decryption_failed", "content authentication failed");
    }
  }
  const plain = await blowfishDecrypt(key, nonce, data, aad);
  if (plain === null) throw new EnvelopeError("decryption_failed", "content authentication failed");
  return plain;
}

/** Seal the content key to one recipient device for an envelope with `header`; `ikm` only for vectors. */
export async function wrapKey(recipient: PublicDeviceKey, key: Bytes, header: Header, ikm?: Bytes): Promise<Recipient> {
  const suite = hpke();
  const recipientPublicKey = await suite.kem.deserializePublicKey(recipient.x25519Public);
  const sender = await suite.createSenderContext({ recipientPublicKey, info: wrapInfo(header), ...(ikm ? { ekm: ikm } : {}) });
  const wrapped = await sender.seal(key, wrapAad(header));
  return { user_id: recipient.userId, key_id: recipient.keyId, enc: b64e(new Uint8Array(sender.enc)), wrapped_key: b64e(new Uint8Array(wrapped)) };
}

/** Encrypt `body` for `recipients` (include the sender's own devices) and sign it. */
export async function sealEnvelope(
  body: MessageBody,
  opts: {
    sender: DeviceKeys;
    senderId: string;
    conversationId: string;
    recipients: PublicDeviceKey[];
    suite?: Suite;
    /** 1 only for the v1 vectors and tests. */
    version?: EnvelopeVersion;
    randomness?: SealRandomness;
  },
): Promise<Envelope> {
  const suite = opts.suite ?? SUITE_AES256GCM;
  const v = opts.version ?? ENVELOPE_VERSION;
  if (!SUITES.includes(suite) || !ENVELOPE_VERSIONS.includes(v)) {
    throw new EnvelopeError("unsupported_suite", `unknown suite ${suite} or version ${v}`);
  }
  if (typeof body.type !== "string") throw new Error('message body needs a string "type"');
  if (opts.recipients.length === 0) throw new Error("an envelope needs at least one recipient");
  const rnd = opts.randomness ?? freshRandomness(suite, opts.recipients.length);
  const header = { v, suite, conversation_id: opts.conversationId, sender_id: opts.senderId, sender_key_id: opts.sender.keyId };
  const aad = headerAad(header);
  const ciphertext = await encryptContent(suite, rnd.contentKey, rnd.nonce, canonicalJson(body), aad);
  const recipients: Recipient[] = [];
  for (const [i, r] of opts.recipients.entries()) {
    recipients.push(await wrapKey(r, rnd.contentKey, header, opts.randomness ? rnd.ephemeralIkm[i] : undefined));
  }
  const commit = v === 1 ? {} : { key_commit: b64e(await keyCommitment(rnd.contentKey, rnd.nonce)) };
  const unsigned = { ...header, ...commit, nonce: b64e(rnd.nonce), ciphertext: b64e(ciphertext), recipients };
  const signature = await ed25519Sign(opts.sender, await signingDigest(unsigned));
  const envelope: Envelope = { ...unsigned, signature: b64e(signature) };
  if (canonicalJson(envelope).length > MAX_ENVELOPE_BYTES) {
    throw new EnvelopeError("envelope_too_large", "message too large for an envelope");
  }
  return envelope;
}

function checkStructure(obj: unknown): Envelope {
  if (typeof obj !== "object" || obj === null) throw new EnvelopeError("malformed_envelope", "envelope is not a JSON object");
  const e = obj as Record<string, unknown>;
  if (!ENVELOPE_VERSIONS.includes(e.v as EnvelopeVersion) || !SUITES.includes(e.suite as Suite)) {
    throw new EnvelopeError("unsupported_suite", "unsupported envelope version or suite");
  }
  const env = pickEnvelope(e);
  try {
    if (env.v === 1 ? "key_commit" in env : typeof env.key_commit !== "string") throw new Error();
    if (env.v !== 1) b64dExact(env.key_commit as string, KEY_COMMIT_SIZE);
    const strings = [env.conversation_id, env.sender_id, env.sender_key_id, env.nonce, env.ciphertext, env.signature];
    if (!strings.every((s) => typeof s === "string") || !isKeyId(env.sender_key_id)) throw new Error();
    const nonceSize = env.suite === SUITE_AES256GCM ? AES_GCM_NONCE_SIZE : BLOWFISH_NONCE_SIZE;
    b64dExact(env.nonce, nonceSize);
    b64dExact(env.signature, 64);
    if (b64d(env.ciphertext).length < (env.suite === SUITE_AES256GCM ? 16 : HMAC_TAG_SIZE)) throw new Error();
    if (!Array.isArray(env.recipients) || env.recipients.length === 0) throw new Error();
    for (const r of env.recipients) {
      if (typeof r.user_id !== "string" || !isKeyId(r.key_id)) throw new Error();
      b64dExact(r.enc, 32);
      b64dExact(r.wrapped_key, 48);
    }
  } catch {
    throw new EnvelopeError("malformed_envelope", "envelope fails structural validation");
  }
  return env;
}

/** Verify and decrypt an envelope (v1 or v2) for `device` (owned by `userId`); return the body.
 *  `sender` is the sender device's published key (from the key directory). */
export async function openEnvelope(
  envelope: unknown,
  opts: { device: DeviceKeys; userId: string; sender: PublicDeviceKey },
): Promise<MessageBody> {
  return (await openEnvelopeDetailed(envelope, opts)).body;
}

/** openEnvelope, also telling the version and whether the envelope was key-committing. */
export async function openEnvelopeDetailed(
  envelope: unknown,
  opts: { device: DeviceKeys; userId: string; sender: PublicDeviceKey },
): Promise<OpenedEnvelope> {
  const env = checkStructure(envelope);
  if (opts.sender.userId !== env.sender_id || opts.sender.keyId !== env.sender_key_id) {
    throw new EnvelopeError("bad_signature", "envelope sender does not match the given key");
  }
  if (!(await ed25519Verify(opts.sender.ed25519Public, b64d(env.signature), await signingDigest(env)))) {
    throw new EnvelopeError("bad_signature", "signature does not verify");
  }
  const mine = env.recipients.find((r) => r.user_id === opts.userId && r.key_id === opts.device.keyId);
  if (!mine) throw new EnvelopeError("not_a_recipient", "no recipient entry for this device");
  let contentKey: Bytes;
  try {
    const ctx = await hpke().createRecipientContext({ recipientKey: opts.device.x25519, enc: b64d(mine.enc), info: wrapInfo(env) });
    contentKey = new Uint8Array(await ctx.open(b64d(mine.wrapped_key), wrapAad(env)));
  } catch {
    throw new EnvelopeError("decryption_failed", "cannot unwrap the content key");
  }
  const nonce = b64d(env.nonce);
  if (env.v !== 1 && !equalBytes(b64d(env.key_commit as string), await keyCommitment(contentKey, nonce))) {
    throw new EnvelopeError("bad_key_commit", "the content key does not match the envelope's key_commit");
  }
  const plain = await decryptContent(env.suite, contentKey, nonce, b64d(env.ciphertext), headerAad(env));
  let body: unknown;
  try {
    body = JSON.parse(fromUtf8(plain));
  } catch {
    throw new EnvelopeError("malformed_envelope", "decrypted body is not JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body) || typeof (body as MessageBody).type !== "string") {
    throw new EnvelopeError("malformed_envelope", 'decrypted body has no string "type"');
  }
  return { body: body as MessageBody, version: env.v, keyCommitting: env.v !== 1 };
}
