import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { expect, it } from "vitest";
import { fromHex, toHex } from "../src/crypto/bytes";

// RFC 9180 Appendix A.1.1: base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM (same KEM
// and KDF as the envelope's suite; the RFC has no X25519 + AES-256-GCM vector).
const A11 = {
  info: "4f6465206f6e2061204772656369616e2055726e",
  ikmE: "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234",
  ikmR: "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037",
  pkRm: "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
  enc: "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
  pt: "4265617574792069732074727574682c20747275746820626561757479",
  aad: "436f756e742d30",
  ct: "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
};

it("@hpke/core reproduces RFC 9180 A.1.1", async () => {
  const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });
  const recipient = await suite.kem.deriveKeyPair(fromHex(A11.ikmR));
  expect(toHex(await suite.kem.serializePublicKey(recipient.publicKey))).toBe(A11.pkRm);
  const sender = await suite.createSenderContext({ recipientPublicKey: recipient.publicKey, info: fromHex(A11.info), ekm: fromHex(A11.ikmE) });
  expect(toHex(sender.enc)).toBe(A11.enc);
  expect(toHex(await sender.seal(fromHex(A11.pt), fromHex(A11.aad)))).toBe(A11.ct);
  const opener = await suite.createRecipientContext({ recipientKey: recipient.privateKey, enc: fromHex(A11.enc), info: fromHex(A11.info) });
  expect(toHex(await opener.open(fromHex(A11.ct), fromHex(A11.aad)))).toBe(A11.pt);
});
