import { describe, expect, it } from "vitest";
import { b64d, b64e } from "../src/crypto/b64";
import { fromHex, randomBytes } from "../src/crypto/bytes";
import {
  keyCommitment,
  openEnvelopeDetailed,
  sealEnvelope,
  signingDigest,
  wrapKey,
  type Envelope,
} from "../src/crypto/envelope";
import { ed25519Sign, generateDeviceKeys, importDeviceKeys, type DeviceKeys, type PublicDeviceKey } from "../src/crypto/keys";
import { vector } from "./vectors";

const pub = (userId: string, k: DeviceKeys): PublicDeviceKey => ({ userId, keyId: k.keyId, x25519Public: k.x25519Public, ed25519Public: k.ed25519Public });
const body = { type: "text", text: "meet at noon", sent_at: "2025-01-01T00:00:00.000Z" };

async function resign(raw: Record<string, unknown>, signer: DeviceKeys): Promise<Envelope> {
  const { signature: _sig, ...unsigned } = raw;
  return { ...unsigned, signature: b64e(await ed25519Sign(signer, await signingDigest(unsigned as unknown as Envelope))) } as Envelope;
}

for (const name of ["envelope_v2_aes256gcm.json", "envelope_v2_blowfish.json"]) {
  it(`rejects the shared invisible-salamander vector with bad_key_commit (${name})`, async () => {
    const v = vector(name);
    const s = v.salamander;
    const sender = { userId: "alice", keyId: v.sender.device.key_id, x25519Public: fromHex(v.sender.device.x25519_public_hex), ed25519Public: fromHex(v.sender.device.ed25519_public_hex) };
    const device = async (userId: string) => {
      const d = v.recipients.find((r: any) => r.user_id === userId).device;
      return importDeviceKeys(fromHex(d.x25519_private_hex), fromHex(d.ed25519_private_hex));
    };
    const bob = s.rejected_by.user_id;
    await expect(openEnvelopeDetailed(s.envelope, { device: await device(bob), userId: bob, sender })).rejects.toMatchObject({ code: s.rejected_by.code });
    const alice = s.opened_by.user_id;
    expect((await openEnvelopeDetailed(s.envelope, { device: await device(alice), userId: alice, sender })).body).toEqual(v.body);
  });
}

describe("browser-sealed v2 envelopes", async () => {
  const alice = await generateDeviceKeys();
  const bob = await generateDeviceKeys();
  const [alicePub, bobPub] = [pub("alice", alice), pub("bob", bob)];
  const open = (env: unknown, who = bob, userId = "bob") => openEnvelopeDetailed(env, { device: who, userId, sender: alicePub });

  for (const suite of ["hpke-x25519-aes256gcm", "hpke-x25519-blowfish"] as const) {
    it(`are v2 and key-committing by default; v1 still opens, flagged (${suite})`, async () => {
      const env = await sealEnvelope(body, { sender: alice, senderId: "alice", conversationId: "c-1", recipients: [bobPub, alicePub], suite });
      expect(env.v).toBe(2);
      expect(b64d(env.key_commit!)).toHaveLength(32);
      expect(await open(env)).toEqual({ body, version: 2, keyCommitting: true });
      const v1 = await sealEnvelope(body, { sender: alice, senderId: "alice", conversationId: "c-1", recipients: [bobPub], suite, version: 1 });
      expect("key_commit" in v1).toBe(false);
      expect(await open(v1)).toEqual({ body, version: 1, keyCommitting: false });
    });

    it(`rejects a tampered key_commit and an invisible salamander (${suite})`, async () => {
      const env = await sealEnvelope(body, { sender: alice, senderId: "alice", conversationId: "c-1", recipients: [bobPub, alicePub], suite });
      const flipped = b64d(env.key_commit!);
      flipped[0]! ^= 1;
      const tampered = { ...env, key_commit: b64e(flipped) };
      await expect(open(tampered)).rejects.toMatchObject({ code: "bad_signature" });
      await expect(open(await resign(tampered, alice))).rejects.toMatchObject({ code: "bad_key_commit" });
      const { key_commit: _kc, ...without } = env;
      await expect(open(await resign(without, alice))).rejects.toMatchObject({ code: "malformed_envelope" });
      // one signed envelope, bob's wrap carries another content key
      const other = randomBytes(32);
      const salamander = await resign({ ...env, recipients: [await wrapKey(bobPub, other, env), env.recipients[1]] }, alice);
      await expect(open(salamander)).rejects.toMatchObject({ code: "bad_key_commit" });
      expect((await open(salamander, alice, "alice")).body).toEqual(body);
      const forBob = await resign({ ...salamander, key_commit: b64e(await keyCommitment(other, b64d(env.nonce))) }, alice);
      await expect(open(forBob, alice, "alice")).rejects.toMatchObject({ code: "bad_key_commit" });
    });
  }

  it("binds wraps to the version and the header", async () => {
    const env = await sealEnvelope(body, { sender: alice, senderId: "alice", conversationId: "c-1", recipients: [bobPub] });
    const { key_commit: _kc, ...rest } = env;
    await expect(open(await resign({ ...rest, v: 1 }, alice))).rejects.toMatchObject({ code: "decryption_failed" });
    await expect(open(await resign({ ...env, conversation_id: "c-2" }, alice))).rejects.toMatchObject({ code: "decryption_failed" });
    await expect(open({ ...env, v: 3 })).rejects.toMatchObject({ code: "unsupported_suite" });
  });
});
