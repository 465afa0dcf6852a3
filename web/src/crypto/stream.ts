/**
 * File encryption: STREAM over AES-256-GCM in 64 KiB chunks (SPEC §5), byte-compatible with
 * chainchat.crypto.stream:
 *
 *   header  = "CCST" || 0x01 || prefix(7)
 *   chunk_i = AES-256-GCM(key, prefix || uint32_be(i) || last, plaintext_i, aad = header)
 *
 * Every chunk but the last holds exactly 64 KiB of plaintext; an empty file is one empty final
 * chunk. Push-style encryptor/decryptor classes keep memory bounded for any file size; a
 * decryptor's output is provisional until `finish()` succeeds (truncation shows only there).
 */
import { concat, copy, randomBytes, utf8, type Bytes } from "./bytes";

export const MAGIC = utf8("CCST");
export const VERSION = 1;
export const PREFIX_SIZE = 7;
export const HEADER_SIZE = MAGIC.length + 1 + PREFIX_SIZE;
export const CHUNK_SIZE = 64 * 1024;
export const TAG_SIZE = 16;
export const SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;
const MAX_CHUNKS = 2 ** 32;

export type StreamErrorCode = "stream_malformed" | "stream_authentication_failed" | "stream_truncated" | "stream_trailing_data";

export class StreamError extends Error {
  constructor(
    readonly code: StreamErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function ciphertextSize(plaintextSize: number): number {
  const chunks = Math.max(1, Math.ceil(plaintextSize / CHUNK_SIZE));
  return HEADER_SIZE + plaintextSize + TAG_SIZE * chunks;
}

export function plaintextSize(size: number): number {
  const body = size - HEADER_SIZE;
  const full = Math.floor(body / SEALED_CHUNK_SIZE);
  const rest = body - full * SEALED_CHUNK_SIZE;
  if (body <= 0 || (rest > 0 && rest < TAG_SIZE)) throw new StreamError("stream_malformed", "impossible encrypted file size");
  return full * CHUNK_SIZE + (rest ? rest - TAG_SIZE : 0);
}

function nonce(prefix: Uint8Array, counter: number, last: boolean): Bytes {
  if (counter >= MAX_CHUNKS) throw new StreamError("stream_malformed", "file too large for STREAM (2**32 chunks)");
  const out = new Uint8Array(12);
  out.set(prefix, 0);
  new DataView(out.buffer).setUint32(PREFIX_SIZE, counter, false);
  out[11] = last ? 1 : 0;
  return out;
}

async function aesKey(key: Uint8Array<ArrayBuffer>, usage: KeyUsage): Promise<CryptoKey> {
  if (key.length !== 32) throw new Error("STREAM needs a 32-byte key");
  return crypto.subtle.importKey("raw", key, "AES-GCM", false, [usage]);
}

/** A fresh random 32-byte file key. */
export function generateFileKey(): Bytes {
  return randomBytes(32);
}

/** Feed plaintext pieces of any size; get sealed chunks back; `finish()` seals the final one. */
export class StreamEncryptor {
  readonly header: Bytes;
  private buf: Bytes = new Uint8Array(0);
  private counter = 0;

  private constructor(
    private readonly key: CryptoKey,
    private readonly prefix: Bytes,
  ) {
    this.header = concat(MAGIC, new Uint8Array([VERSION]), prefix);
  }

  static async create(key: Bytes, prefix?: Bytes): Promise<StreamEncryptor> {
    const p = prefix ?? randomBytes(PREFIX_SIZE);
    if (p.length !== PREFIX_SIZE) throw new Error("STREAM needs a 7-byte prefix");
    return new StreamEncryptor(await aesKey(key, "encrypt"), p);
  }

  private async seal(data: Bytes, last: boolean): Promise<Bytes> {
    const iv = nonce(this.prefix, this.counter, last);
    this.counter += 1;
    return copy(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: this.header }, this.key, data));
  }

  async feed(data: Uint8Array): Promise<Bytes[]> {
    this.buf = concat(this.buf, data);
    const out: Bytes[] = [];
    let off = 0;
    // Only with strictly more than one chunk buffered is the first one certainly not the last.
    while (this.buf.length - off > CHUNK_SIZE) {
      out.push(await this.seal(this.buf.slice(off, off + CHUNK_SIZE), false));
      off += CHUNK_SIZE;
    }
    this.buf = this.buf.slice(off);
    return out;
  }

  async finish(): Promise<Bytes> {
    return this.seal(this.buf, true);
  }
}

/** Feed ciphertext pieces of any size; get authenticated plaintext chunks back. */
export class StreamDecryptor {
  private header: Bytes | null = null;
  private buf: Bytes = new Uint8Array(0);
  private counter = 0;

  private constructor(private readonly key: CryptoKey) {}

  static async create(key: Bytes): Promise<StreamDecryptor> {
    return new StreamDecryptor(await aesKey(key, "decrypt"));
  }

  private async open(sealed: Bytes, last: boolean): Promise<Bytes | null> {
    const header = this.header!;
    const iv = nonce(header.subarray(MAGIC.length + 1), this.counter, last);
    try {
      return copy(await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: header }, this.key, sealed));
    } catch {
      return null;
    }
  }

  private takeHeader(): void {
    if (this.header === null && this.buf.length >= HEADER_SIZE) {
      const header = this.buf.slice(0, HEADER_SIZE);
      if (!MAGIC.every((b, i) => header[i] === b) || header[MAGIC.length] !== VERSION) {
        throw new StreamError("stream_malformed", "not a ChainChat encrypted file (v1)");
      }
      this.header = header;
      this.buf = this.buf.slice(HEADER_SIZE);
    }
  }

  async feed(data: Uint8Array): Promise<Bytes[]> {
    this.buf = concat(this.buf, data);
    this.takeHeader();
    if (this.header === null) return [];
    const out: Bytes[] = [];
    let off = 0;
    while (this.buf.length - off > SEALED_CHUNK_SIZE) {
      const sealed = this.buf.slice(off, off + SEALED_CHUNK_SIZE);
      const plain = await this.open(sealed, false);
      if (plain === null) {
        if ((await this.open(sealed, true)) !== null) {
          throw new StreamError("stream_trailing_data", `data follows the final chunk ${this.counter}`);
        }
        throw new StreamError("stream_authentication_failed", `chunk ${this.counter} failed authentication`);
      }
      out.push(plain);
      this.counter += 1;
      off += SEALED_CHUNK_SIZE;
    }
    this.buf = this.buf.slice(off);
    return out;
  }

  async finish(): Promise<Bytes> {
    if (this.header === null) throw new StreamError("stream_malformed", "stream shorter than its header");
    const sealed = this.buf;
    if (sealed.length < TAG_SIZE) {
      if (sealed.length === 0) throw new StreamError("stream_truncated", "stream ended before its final chunk");
      throw new StreamError("stream_malformed", "dangling bytes shorter than a tag");
    }
    const plain = await this.open(sealed, true);
    if (plain === null) {
      if ((await this.open(sealed, false)) !== null) throw new StreamError("stream_truncated", "stream ended before its final chunk");
      throw new StreamError("stream_authentication_failed", `chunk ${this.counter} failed authentication`);
    }
    return plain;
  }
}

/** Encrypt a whole byte array (small files, tests). */
export async function encryptBytes(key: Bytes, data: Uint8Array, prefix?: Bytes): Promise<Bytes> {
  const enc = await StreamEncryptor.create(key, prefix);
  return concat(enc.header, ...(await enc.feed(data)), await enc.finish());
}

/** Decrypt a whole byte array (small files, tests). */
export async function decryptBytes(key: Bytes, data: Uint8Array): Promise<Bytes> {
  const dec = await StreamDecryptor.create(key);
  return concat(...(await dec.feed(data)), await dec.finish());
}
