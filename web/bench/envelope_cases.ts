/** The envelope benchmark cases, shared by the Node run (envelope.bench.ts) and the Chromium run
 *  (browser_entry.ts): seal + open of a 1 KiB text to two devices, v1 and v2, both suites. */
import { openEnvelope, sealEnvelope, type EnvelopeVersion } from "../src/crypto/envelope";
import { generateDeviceKeys, type DeviceKeys, type PublicDeviceKey, type Suite } from "../src/crypto/keys";

export interface CaseResult {
  seal_open_us: number;
  seal_open_cpu_us?: number;
  iterations: number;
}

const pub = (userId: string, k: DeviceKeys): PublicDeviceKey => ({ userId, keyId: k.keyId, x25519Public: k.x25519Public, ed25519Public: k.ed25519Public });
const body = { type: "text", text: "x".repeat(1024), sent_at: "2025-01-01T00:00:00.000Z" };

/** `cpuMicros`: the process's CPU time so far (Node only); without it only wall time is reported. */
export async function runEnvelopeCases(iterations: number, cpuMicros?: () => number): Promise<Record<string, CaseResult>> {
  const alice = await generateDeviceKeys();
  const bob = await generateDeviceKeys();
  const recipients = [pub("bob", bob), pub("alice", alice)];
  const once = async (suite: Suite, version: EnvelopeVersion) => {
    const env = await sealEnvelope(body, { sender: alice, senderId: "alice", conversationId: "c", recipients, suite, version });
    return openEnvelope(env, { device: bob, userId: "bob", sender: recipients[1]! });
  };
  const results: Record<string, CaseResult> = {};
  for (const suite of ["hpke-x25519-aes256gcm", "hpke-x25519-blowfish"] as Suite[]) {
    for (const version of [1, 2] as EnvelopeVersion[]) {
      for (let i = 0; i < 20; i++) {
        if ((await once(suite, version)).text !== body.text) throw new Error("envelope did not round-trip");
      }
      const cpu = cpuMicros?.();
      const start = performance.now();
      for (let i = 0; i < iterations; i++) await once(suite, version);
      const wall = performance.now() - start;
      const result: CaseResult = { seal_open_us: (wall * 1000) / iterations, iterations };
      if (cpuMicros && cpu !== undefined) result.seal_open_cpu_us = (cpuMicros() - cpu) / iterations;
      results[`${suite} v${version}`] = result;
    }
  }
  return results;
}
