/**
 * Envelope seal + open with the web client's code (src/crypto/envelope.ts: @hpke/core + WebCrypto)
 * in Node (V8 and Node's WebCrypto, i.e. OpenSSL); bench/crypto_bench.py also runs the same cases
 * in Chromium (browser_entry.ts). Per case: mean wall time and process CPU time per seal + open.
 *
 *     BENCH_OUT=out.json npx vitest run --config bench/vitest.config.ts
 */
import { writeFileSync } from "node:fs";
import { expect, it } from "vitest";
import { runEnvelopeCases } from "./envelope_cases";

it("envelope seal + open, 1 KiB to 2 devices", async () => {
  const cpu = () => {
    const used = process.cpuUsage();
    return used.user + used.system;
  };
  const results = await runEnvelopeCases(Number(process.env.BENCH_ITERATIONS ?? 300), cpu);
  expect(Object.keys(results)).toHaveLength(4);
  const out = { runtime: `node ${process.version} (V8, Node WebCrypto)`, results };
  if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(out, null, 2));
  else console.log(JSON.stringify(out, null, 2));
}, 600_000);
