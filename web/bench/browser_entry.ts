/** The envelope benchmark for Chromium: bundled by bench/vite.browser.config.ts into one script
 *  that defines `window.ChainChatBench.run(iterations)`; bench/crypto_bench.py loads it with
 *  Playwright from a 127.0.0.1 page (a secure context, so WebCrypto is there). */
import { runEnvelopeCases } from "./envelope_cases";

export function run(iterations: number) {
  return runEnvelopeCases(iterations);
}
