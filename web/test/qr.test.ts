// The QR drawn for TOTP setup decodes back to the otpauth URI (rasterised from our SVG path).
import { describe, expect, it } from "vitest";
import decodeQR from "qr/decode.js";
import { qrPath } from "../src/ui/qr";

function rasterise(size: number, d: string, scale: number): { width: number; height: number; data: Uint8Array } {
  const w = size * scale;
  const data = new Uint8Array(w * w * 4).fill(255);
  for (const m of d.matchAll(/M(\d+) (\d+)h1v1h-1z/g)) {
    const [x, y] = [Number(m[1]), Number(m[2])];
    for (let dy = 0; dy < scale; dy++)
      for (let dx = 0; dx < scale; dx++) {
        const i = ((y * scale + dy) * w + x * scale + dx) * 4;
        data[i] = data[i + 1] = data[i + 2] = 0;
      }
  }
  return { width: w, height: w, data };
}

describe("TOTP QR code", () => {
  it("decodes to the otpauth URI", () => {
    const uri = "otpauth://totp/ChainChat:alice%40example.test?secret=JBSWY3DPEHPK3PXP&issuer=ChainChat";
    const { size, d } = qrPath(uri);
    expect(decodeQR(rasterise(size, d, 6))).toBe(uri);
  });
});
