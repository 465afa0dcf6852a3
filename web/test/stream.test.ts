import { describe, expect, it } from "vitest";
import { concat, fromHex, sha256, toHex } from "../src/crypto/bytes";
import { StreamDecryptor, StreamError, ciphertextSize, decryptBytes, encryptBytes, plaintextSize } from "../src/crypto/stream";
import { vector } from "./vectors";

const v = vector("stream.json");
const key = fromHex(v.key_hex);
const prefix = fromHex(v.prefix_hex);
const plaintext = (n: number): Uint8Array<ArrayBuffer> => Uint8Array.from({ length: n }, (_, i) => i % 251);

describe("STREAM (stream.json)", () => {
  it.each(v.cases as any[])("encrypts and decrypts $plaintext_size bytes like the Python SDK", async (c) => {
    const sealed = await encryptBytes(key, plaintext(c.plaintext_size), prefix);
    expect(sealed.length).toBe(c.ciphertext_size);
    expect(ciphertextSize(c.plaintext_size)).toBe(c.ciphertext_size);
    expect(plaintextSize(c.ciphertext_size)).toBe(c.plaintext_size);
    expect(toHex(await sha256(sealed))).toBe(c.ciphertext_sha256_hex);
    if (c.ciphertext_hex) expect(toHex(sealed)).toBe(c.ciphertext_hex);
    expect(await decryptBytes(key, sealed)).toEqual(plaintext(c.plaintext_size));
  });

  it("decrypts when fed in odd-sized pieces", async () => {
    const sealed = await encryptBytes(key, plaintext(131077), prefix);
    const dec = await StreamDecryptor.create(key);
    const out: Uint8Array[] = [];
    for (let off = 0; off < sealed.length; off += 7777) out.push(...(await dec.feed(sealed.subarray(off, off + 7777))));
    out.push(await dec.finish());
    expect(concat(...out)).toEqual(plaintext(131077));
  });

  it("detects truncation, reordering, trailing data and corruption", async () => {
    const sealed = await encryptBytes(key, plaintext(131077), prefix);
    const chunk = 65536 + 16;
    const truncated = sealed.slice(0, 12 + 2 * chunk);
    await expect(decryptBytes(key, truncated)).rejects.toMatchObject({ code: "stream_truncated" });
    const header = sealed.slice(0, 12);
    const c0 = sealed.slice(12, 12 + chunk);
    const c1 = sealed.slice(12 + chunk, 12 + 2 * chunk);
    const rest = sealed.slice(12 + 2 * chunk);
    await expect(decryptBytes(key, concat(header, c1, c0, rest))).rejects.toBeInstanceOf(StreamError);
    const small = await encryptBytes(key, plaintext(10), prefix);
    await expect(decryptBytes(key, concat(small, small.slice(12)))).rejects.toBeInstanceOf(StreamError);
    const bad = sealed.slice();
    bad[100] = bad[100]! ^ 1;
    await expect(decryptBytes(key, bad)).rejects.toMatchObject({ code: "stream_authentication_failed" });
    await expect(decryptBytes(key, new Uint8Array(5))).rejects.toMatchObject({ code: "stream_malformed" });
  });
});
