import { describe, expect, it } from "vitest";
import { blowfishKeys } from "../src/crypto/blowfish";
import { fromHex, toHex } from "../src/crypto/bytes";
import { canonicalJson, canonicalString } from "../src/crypto/canonical";
import {
  EnvelopeError,
  envelopeDigest,
  headerAad,
  openEnvelope,
  openEnvelopeDetailed,
  sealEnvelope,
  signingDigest,
  wrapInfo,
  type Envelope,
} from "../src/crypto/envelope";
import { generateDeviceKeys, importDeviceKeys, type DeviceKeys, type PublicDeviceKey } from "../src/crypto/keys";
import { vector } from "./vectors";

interface Device {
  x25519_private_hex: string;
  ed25519_private_hex: string;
  x25519_public_hex: string;
  ed25519_public_hex: string;
  key_id: string;
}

const load = (d: Device): Promise<DeviceKeys> => importDeviceKeys(fromHex(d.x25519_private_hex), fromHex(d.ed25519_private_hex));
const pub = (userId: string, d: Device): PublicDeviceKey => ({
  userId,
  keyId: d.key_id,
  x25519Public: fromHex(d.x25519_public_hex),
  ed25519Public: fromHex(d.ed25519_public_hex),
});

const FILES = ["envelope_aes256gcm.json", "envelope_blowfish.json", "envelope_v2_aes256gcm.json", "envelope_v2_blowfish.json"];

for (const file of FILES) {
  describe(`Python-sealed envelope (${file})`, () => {
    const v = vector(file);
    const envelope = v.envelope as Envelope;
    const sender = pub(v.sender.user_id, v.sender.device);

    it("has the header AAD, body bytes and signing digest of the vector", async () => {
      expect(canonicalString(JSON.parse(new TextDecoder().decode(headerAad(envelope))))).toBe(v.header_aad);
      expect(new TextDecoder().decode(headerAad(envelope))).toBe(v.header_aad);
      expect(toHex(canonicalJson(v.body))).toBe(v.body_bytes_hex);
      const { signature: _sig, ...unsigned } = envelope;
      expect(canonicalString(unsigned)).toBe(v.signing_input);
      expect(toHex(await signingDigest(envelope))).toBe(v.signing_digest_hex);
      if (v.blowfish_keys_hex) {
        const [enc, mac] = await blowfishKeys(fromHex(v.content_key_hex));
        expect([toHex(enc), toHex(mac)]).toEqual(v.blowfish_keys_hex);
      }
      if (envelope.v === 2) expect(toHex(wrapInfo(envelope))).toBe(v.wrap_info_hex);
    });

    it("opens for every recipient device, key-committing exactly in v2", async () => {
      for (const r of v.recipients) {
        const device = await load(r.device);
        const opened = await openEnvelopeDetailed(envelope, { device, userId: r.user_id, sender });
        expect(opened).toEqual({ body: v.body, version: envelope.v, keyCommitting: envelope.v === 2 });
      }
    });

    it("seals byte for byte like the Python SDK with the same randomness", async () => {
      const sealed = await sealEnvelope(v.body, {
        sender: await load(v.sender.device),
        senderId: v.sender.user_id,
        conversationId: envelope.conversation_id,
        recipients: v.recipients.map((r: any) => pub(r.user_id, r.device)),
        suite: v.suite,
        version: envelope.v,
        randomness: {
          contentKey: fromHex(v.content_key_hex),
          nonce: fromHex(v.nonce_hex),
          ephemeralIkm: v.recipients.map((r: any) => fromHex(r.ephemeral_ikm_hex)),
        },
      });
      expect(canonicalString(sealed)).toBe(canonicalString(envelope));
      expect(await envelopeDigest(sealed)).toBe(await envelopeDigest(envelope));
    });

    it("rejects a tampered ciphertext, a wrong sender key and a non-recipient", async () => {
      const bob = v.recipients[0];
      const device = await load(bob.device);
      const ct = [...envelope.ciphertext];
      ct[5] = ct[5] === "A" ? "B" : "A";
      await expect(openEnvelope({ ...envelope, ciphertext: ct.join("") }, { device, userId: bob.user_id, sender })).rejects.toMatchObject({
        code: "bad_signature",
      });
      const other = await generateDeviceKeys();
      const impostor = { ...sender, ed25519Public: other.ed25519Public };
      await expect(openEnvelope(envelope, { device, userId: bob.user_id, sender: impostor })).rejects.toBeInstanceOf(EnvelopeError);
      await expect(openEnvelope(envelope, { device: other, userId: "carol", sender })).rejects.toMatchObject({ code: "not_a_recipient" });
      await expect(openEnvelope({ ...envelope, suite: "rot13" }, { device, userId: bob.user_id, sender })).rejects.toMatchObject({
        code: "unsupported_suite",
      });
    });
  });
}

describe("browser-sealed envelopes", () => {
  for (const suite of ["hpke-x25519-aes256gcm", "hpke-x25519-blowfish"] as const) {
    it(`round-trip with fresh randomness (${suite})`, async () => {
      const alice = await generateDeviceKeys();
      const bob = await generateDeviceKeys();
      const alicePub = { userId: "alice", keyId: alice.keyId, x25519Public: alice.x25519Public, ed25519Public: alice.ed25519Public };
      const bobPub = { userId: "bob", keyId: bob.keyId, x25519Public: bob.x25519Public, ed25519Public: bob.ed25519Public };
      const body = { type: "text", text: "hi ✓ " + "x".repeat(1000), sent_at: "2025-01-01T00:00:00.000Z" };
      const env = await sealEnvelope(body, { sender: alice, senderId: "alice", conversationId: "c-1", recipients: [bobPub, alicePub], suite });
      expect(env.suite).toBe(suite);
      expect(await openEnvelope(env, { device: bob, userId: "bob", sender: alicePub })).toEqual(body);
      expect(await openEnvelope(env, { device: alice, userId: "alice", sender: alicePub })).toEqual(body);
    });
  }
});
