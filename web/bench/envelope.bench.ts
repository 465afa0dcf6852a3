/**
 * Envelope seal + open with the web client's code (src/crypto/envelope.ts: @hpke/core + WebCrypto),
 * 1 KiB text to two devices, v1 and v2, both suites — the figure bench/crypto_bench.py reports as
 * the browser's. It runs in Node (V8 and Node's WebCrypto, i.e. OpenSSL), not in Chromium:
 *
 *     BENCH_OUT=out.json npx vitest run --config bench/vitest.config.ts
 *
 * Per case: mean wall time of seal + open after a warm-up, and the process CPU time per iteration.
 */
import { writeFileSync } from "node:fs";
import { expect, it } from "vitest";
import { openEnvelope, sealEnvelope, type EnvelopeVersion } from "../src/crypto/envelope";
import { generateDeviceKeys, type DeviceKeys, type PublicDeviceKey, type Suite } from "../src/crypto/keys";

const pub = (userId: string, k: DeviceKeys): PublicDeviceKey => ({ userId, keyId: k.keyId, x25519Public: k.x25519Public, ed25519Public: k.ed25519Public });
const body = { type: "text", text: "x".repeat(1024), sent_at: "2025-01-01T00:00:00.000Z" };
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 300);

it("envelope seal + open, 1 KiB to 2 devices", async () => {
  const alice = await generateDeviceKeys();
  const bob = await generateDeviceKeys();
  const recipients = [pub("bob", bob), pub("alice", alice)];
  const once = async (suite: Suite, version: EnvelopeVersion) => {
    const env = await sealEnvelope(body, { sender: alice, senderId: "alice", conversationId: "c", recipients, suite, version });
    return openEnvelope(env, { device: bob, userId: "bob", sender: recipients[1]! });
  };
  const results: Record<string, { seal_open_us: number; seal_open_cpu_us: number; iterations: number }> = {};
  for (const suite of ["hpke-x25519-aes256gcm", "hpke-x25519-blowfish"] as Suite[]) {
    for (const version of [1, 2] as EnvelopeVersion[]) {
      for (let i = 0; i < 20; i++) expect((await once(suite, version)).text).toBe(body.text);
      const cpu = process.cpuUsage();
      const start = performance.now();
      for (let i = 0; i < ITERATIONS; i++) await once(suite, version);
      const wall = performance.now() - start;
      const used = process.cpuUsage(cpu);
      results[`${suite} v${version}`] = {
        seal_open_us: (wall * 1000) / ITERATIONS,
        seal_open_cpu_us: (used.user + used.system) / ITERATIONS,
        iterations: ITERATIONS,
      };
    }
  }
  const out = { runtime: `node ${process.version} (V8, Node WebCrypto; not Chromium)`, results };
  if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(out, null, 2));
  else console.log(JSON.stringify(out, null, 2));
}, 600_000);
