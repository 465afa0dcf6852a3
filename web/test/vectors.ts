import { readFileSync } from "node:fs";

/** Load a shared test vector file from protocol/chainchat_protocol/vectors/. */
export function vector<T = any>(name: string): T {
  const url = new URL(`../../protocol/chainchat_protocol/vectors/${name}`, import.meta.url);
  return JSON.parse(readFileSync(url, "utf-8")) as T;
}
