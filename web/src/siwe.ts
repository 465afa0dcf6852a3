/**
 * Sign-In with Ethereum (EIP-4361) through an injected EIP-1193 wallet (window.ethereum): the
 * page builds the message (domain = this host, chain = the ledger's chain id, a one-time nonce
 * from the server), the wallet signs it with personal_sign, the server checks it.
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { ApiError, type ApiClient, type TokenReply } from "./api";
import { toHex, utf8 } from "./crypto/bytes";

interface Eip1193 {
  request(args: { method: string; params?: unknown[] }): Promise<any>;
}

export function walletAvailable(): boolean {
  return typeof (window as any).ethereum?.request === "function";
}

/** EIP-55 mixed-case checksum address (the spelling EIP-4361 requires). */
export function checksumAddress(address: string): string {
  const hex = address.toLowerCase().replace(/^0x/, "");
  if (!/^[0-9a-f]{40}$/.test(hex)) throw new Error(`not an Ethereum address: ${address}`);
  const hash = toHex(keccak_256(utf8(hex)));
  let out = "0x";
  for (let i = 0; i < 40; i++) out += parseInt(hash[i]!, 16) >= 8 ? hex[i]!.toUpperCase() : hex[i]!;
  return out;
}

export function siweMessage(p: { domain: string; address: string; uri: string; chainId: number; nonce: string; issuedAt: string; statement: string }): string {
  return [
    `${p.domain} wants you to sign in with your Ethereum account:`,
    p.address,
    "",
    p.statement,
    "",
    `URI: ${p.uri}`,
    "Version: 1",
    `Chain ID: ${p.chainId}`,
    `Nonce: ${p.nonce}`,
    `Issued At: ${p.issuedAt}`,
  ].join("\n");
}

/** Sign in (no session) or link the wallet to the logged-in account (`link`). */
export async function signInWithEthereum(api: ApiClient, link: boolean, askCode?: () => Promise<string>): Promise<TokenReply> {
  const eth = (window as any).ethereum as Eip1193 | undefined;
  if (!eth) throw new Error("No Ethereum wallet was found in this browser.");
  const accounts: string[] = await eth.request({ method: "eth_requestAccounts" });
  if (!accounts?.length) throw new Error("The wallet shared no account.");
  const address = checksumAddress(accounts[0]!);
  const [{ nonce }, info] = await Promise.all([api.siweNonce(), api.ledgerInfo()]);
  const message = siweMessage({
    domain: location.host,
    address,
    uri: location.origin,
    chainId: Number(info.chain_id),
    nonce,
    issuedAt: new Date().toISOString(),
    statement: link ? "Link this wallet to my ChainChat account." : "Sign in to ChainChat.",
  });
  const signature: string = await eth.request({ method: "personal_sign", params: [`0x${toHex(utf8(message))}`, address] });
  try {
    return await api.siwe({ message, signature }, link);
  } catch (err) {
    // wallet login asks for TOTP like password login: the same signed message again, with the code
    if (link || !askCode || !(err instanceof ApiError) || err.code !== "mfa_required") throw err;
    const totp_code = await askCode();
    return api.siwe({ message, signature, totp_code }, false);
  }
}
