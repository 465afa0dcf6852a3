/**
 * Message envelopes v1 (SPEC §5), byte-compatible with the Python SDK (chainchat.crypto.envelope):
 *
 * - body = canonical JSON of {type, text|file, sent_at}; aad = canonical JSON of the header
 *   {v, suite, conversation_id, sender_id, sender_key_id};
 * - aes256gcm: ciphertext = AES-256-GCM(K, nonce[12], body, aad); blowfish: see ./blowfish;
 * - K is wrapped to every recipient device with HPKE base mode, DHKEM(X25519, HKDF-SHA256),
 *   HKDF-SHA256, AES-256-GCM, info "chainchat/v1/wrap", aad as above (@hpke/core);
 * - signature = Ed25519(SHA-256(canonical JSON of the envelope without "signature")).
 *
 * Opening checks, in order: structure and suite, signature against the sender's published key,
 * own recipient entry, key unwrap, content decryption; each failure is an EnvelopeError with the
 * same stable code as the Python SDK.
 */
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { b64d, b64dExact, b64e } from "./b64";
import { BLOWFISH_NONCE_SIZE, HMAC_TAG_SIZE, blowfishDecrypt, blowfishEncrypt } from "./blowfish";
import { copy, fromUtf8, randomBytes, sha256, toHex, utf8, type Bytes } from "./bytes";
import { canonicalJson } from "./canonical";
import { SUITES, SUITE_AES256GCM, ed25519Sign, ed25519Verify, isKeyId, type DeviceKeys, type PublicDeviceKey, type Suite } from "./keys";

export const HPKE_INFO = utf8("chainchat/v1/wrap");
export const AES_GCM_NONCE_SIZE = 12;
export const MAX_ENVELOPE_BYTES = 64 * 1024;
const HEADER_FIELDS = ["v", "suite", "conversation_id", "sender_id", "sender_key_id"] as const;
const ENVELOPE_FIELDS = [...HEADER_FIELDS, "nonce", "ciphertext", "recipients", "signature"] as const;

export type EnvelopeErrorCode =
  | "bad_signature"
  | "not_a_recipient"
  | "decryption_failed"
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

export interface Envelope {
  v: 1;
  suite: Suite;
  conversation_id: string;
  sender_id: string;
  sender_key_id: string;
  nonce: string;
  ciphertext: string;
  recipients: Recipient[];
  signature: string;
}

export type MessageBody = { type: string; [key: string]: unknown };

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

export function headerAad(header: Pick<Envelope, (typeof HEADER_FIELDS)[number]>): Bytes {
  return canonicalJson(Object.fromEntries(HEADER_FIELDS.map((k) => [k, header[k]])));
}

/** The envelope fields only (drops server metadata such as message_id, seq, created_at). */
export function pickEnvelope(obj: Record<string, unknown>): Envelope {
  return Object.fromEntries(ENVELOPE_FIELDS.filter((k) => k in obj).map((k) => [k, obj[k]])) as unknown as Envelope;
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

async function wrap(recipient: PublicDeviceKey, key: Bytes, ikm: Bytes | undefined, aad: Bytes): Promise<Recipient> {
  const suite = hpke();
  const recipientPublicKey = await suite.kem.deserializePublicKey(recipient.x25519Public);
  const sender = await suite.createSenderContext({ recipientPublicKey, info: HPKE_INFO, ...(ikm ? { ekm: ikm } : {}) });
  const wrapped = await sender.seal(key, aad);
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
    randomness?: SealRandomness;
  },
): Promise<Envelope> {
  const suite = opts.suite ?? SUITE_AES256GCM;
  if (!SUITES.includes(suite)) throw new EnvelopeError("unsupported_suite", `unknown suite ${suite}`);
  if (typeof body.type !== "string") throw new Error('message body needs a string "type"');
  if (opts.recipients.length === 0) throw new Error("an envelope needs at least one recipient");
  const rnd = opts.randomness ?? freshRandomness(suite, opts.recipients.length);
  const header = { v: 1 as const, suite, conversation_id: opts.conversationId, sender_id: opts.senderId, sender_key_id: opts.sender.keyId };
  const aad = headerAad(header);
  const ciphertext = await encryptContent(suite, rnd.contentKey, rnd.nonce, canonicalJson(body), aad);
  const recipients: Recipient[] = [];
  for (const [i, r] of opts.recipients.entries()) {
    recipients.push(await wrap(r, rnd.contentKey, opts.randomness ? rnd.ephemeralIkm[i] : undefined, aad));
  }
  const unsigned = { ...header, nonce: b64e(rnd.nonce), ciphertext: b64e(ciphertext), recipients };
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
  if (e.v !== 1 || !SUITES.includes(e.suite as Suite)) {
    throw new EnvelopeError("unsupported_suite", "unsupported envelope version or suite");
  }
  const env = pickEnvelope(e);
  try {
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

/** Verify and decrypt an envelope for `device` (owned by `userId`); return the body.
 *  `sender` is the sender device's published key (from the key directory). */
export async function openEnvelope(
  envelope: unknown,
  opts: { device: DeviceKeys; userId: string; sender: PublicDeviceKey },
): Promise<MessageBody> {
  const env = checkStructure(envelope);
  if (opts.sender.userId !== env.sender_id || opts.sender.keyId !== env.sender_key_id) {
    throw new EnvelopeError("bad_signature", "envelope sender does not match the given key");
  }
  if (!(await ed25519Verify(opts.sender.ed25519Public, b64d(env.signature), await signingDigest(env)))) {
    throw new EnvelopeError("bad_signature", "signature does not verify");
  }
  const mine = env.recipients.find((r) => r.user_id === opts.userId && r.key_id === opts.device.keyId);
  if (!mine) throw new EnvelopeError("not_a_recipient", "no recipient entry for this device");
  const aad = headerAad(env);
  let contentKey: Bytes;
  try {
    const ctx = await hpke().createRecipientContext({ recipientKey: opts.device.x25519, enc: b64d(mine.enc), info: HPKE_INFO });
    contentKey = new Uint8Array(await ctx.open(b64d(mine.wrapped_key), aad));
  } catch {
    throw new EnvelopeError("decryption_failed", "cannot unwrap the content key");
  }
  const plain = await decryptContent(env.suite, contentKey, b64d(env.nonce), b64d(env.ciphertext), aad);
  let body: unknown;
  try {
    body = JSON.parse(fromUtf8(plain));
  } catch {
    throw new EnvelopeError("malformed_envelope", "decrypted body is not JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body) || typeof (body as MessageBody).type !== "string") {
    throw new EnvelopeError("malformed_envelope", 'decrypted body has no string "type"');
  }
  return body as MessageBody;
}
