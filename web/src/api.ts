/**
 * The gateway's HTTP API (SPEC §7) for the browser: one method per route, typed with the bodies
 * generated from the protocol's models (wire.ts). This is the only module that names a path; the
 * transport (tokens, refresh, errors, progress) is `HttpClient` in http.ts.
 */
import { API, HttpClient } from "./http";
import type {
  AdminUsersReply,
  AuditReply,
  ConsistencyProof,
  ConversationCreated,
  ConversationList,
  CreateConversationBody,
  FileUploaded,
  History,
  LedgerInfo,
  LoginBody,
  MessageRemoved,
  MfaEnableReply,
  MfaSetupReply,
  MfaStatusReply,
  OwnDevicesReply,
  PostMessageBody,
  ProofObject,
  PublicKeysReply,
  PublishKeyBody,
  PublishKeyReply,
  ReadPosition,
  ReauthBody,
  ReauthReply,
  RegisterBody,
  RegisterReply,
  SendResult,
  SiweBody,
  SiweNonceReply,
  TokenReply,
  UserHit,
  UserPublic,
  VerifyReply,
} from "./wire";

export { API, ApiError } from "./http";
export type { ReauthBody, TokenReply, UserPublic } from "./wire";

/** What the audit log can be narrowed to (`GET /admin/audit`). */
export interface AuditQuery {
  type?: string;
  user_id?: string;
  /** RFC 3339 */
  since?: string;
  limit?: number;
}

/** Which page of history (`GET …/messages`): after `after_seq`, else before `before_seq`. */
export interface HistoryQuery {
  after_seq?: number;
  before_seq?: number;
  limit: number;
}

const path = encodeURIComponent;
const NO_AUTH = { auth: false };

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const text = q.toString();
  return text ? `?${text}` : "";
}

export class ApiClient extends HttpClient {
  // ------------------------------------------------------------ accounts and sessions

  login(body: LoginBody): Promise<TokenReply> {
    return this.post("/auth/login", body, NO_AUTH);
  }

  register(body: RegisterBody): Promise<RegisterReply> {
    return this.post("/auth/register", body, NO_AUTH);
  }

  verifyEmail(token: string): Promise<VerifyReply> {
    return this.post("/auth/verify", { token }, NO_AUTH);
  }

  requestPasswordReset(email: string): Promise<void> {
    return this.post("/auth/password/reset-request", { email }, NO_AUTH);
  }

  resetPassword(token: string, password: string): Promise<void> {
    return this.post("/auth/password/reset", { token, password }, NO_AUTH);
  }

  logout(): Promise<void> {
    return this.post("/auth/logout", {});
  }

  me(): Promise<UserPublic> {
    return this.get("/auth/me");
  }

  /** Give the credentials again (`POST /auth/reauth`); the token is kept for five minutes. */
  async reauth(body: ReauthBody): Promise<void> {
    const reply = await this.post<ReauthReply>("/auth/reauth", body);
    this.rememberReauth(reply.reauth_token, reply.expires_in);
  }

  mfaSetup(): Promise<MfaSetupReply> {
    return this.post("/auth/mfa/setup");
  }

  mfaEnable(code: string): Promise<MfaEnableReply> {
    return this.post("/auth/mfa/enable", { code });
  }

  mfaDisable(code: string): Promise<MfaStatusReply> {
    return this.post("/auth/mfa/disable", { code });
  }

  siweNonce(): Promise<SiweNonceReply> {
    return this.get("/auth/siwe/nonce", NO_AUTH);
  }

  /** Sign in with a wallet, or (`link`, with the session's token) link it to this account. */
  siwe(body: SiweBody, link: boolean): Promise<TokenReply> {
    return this.post("/auth/siwe", body, { auth: link });
  }

  // ------------------------------------------------------------ administration

  adminUsers(status?: string): Promise<AdminUsersReply> {
    return this.get(`/admin/users${query({ status })}`);
  }

  /** approve, reject, disable or enable an account */
  adminAction(userId: string, action: string): Promise<UserPublic> {
    return this.post(`/admin/users/${path(userId)}/${path(action)}`);
  }

  adminSetRole(userId: string, role: UserPublic["role"]): Promise<UserPublic> {
    return this.put(`/admin/users/${path(userId)}/role`, { role });
  }

  adminAudit(filter: AuditQuery): Promise<AuditReply> {
    return this.get(`/admin/audit${query({ ...filter })}`);
  }

  // ------------------------------------------------------------ people and device keys

  searchUsers(q: string): Promise<UserHit[]> {
    return this.get(`/users${query({ q })}`);
  }

  lookupUser(userId: string): Promise<UserHit> {
    return this.get(`/users/${path(userId)}`);
  }

  publishKey(body: PublishKeyBody): Promise<PublishKeyReply> {
    return this.put("/keys/me", body);
  }

  ownDevices(): Promise<OwnDevicesReply> {
    return this.get("/keys/me");
  }

  revokeKey(keyId: string): Promise<void> {
    return this.delete(`/keys/me/${path(keyId)}`);
  }

  keysOf(userId: string): Promise<PublicKeysReply> {
    return this.get(`/keys/${path(userId)}`);
  }

  // ------------------------------------------------------------ conversations and messages

  conversations(cursor: string | null): Promise<ConversationList> {
    return this.get(`/conversations${query({ cursor: cursor ?? undefined })}`);
  }

  createConversation(body: CreateConversationBody): Promise<ConversationCreated> {
    return this.post("/conversations", body);
  }

  history(conversationId: string, page: HistoryQuery): Promise<History> {
    return this.get(`/conversations/${path(conversationId)}/messages${query({ ...page })}`);
  }

  postMessage(conversationId: string, body: PostMessageBody): Promise<SendResult> {
    return this.post(`/conversations/${path(conversationId)}/messages`, body);
  }

  markRead(conversationId: string, seq: number): Promise<ReadPosition> {
    return this.post(`/conversations/${path(conversationId)}/read`, { seq });
  }

  deleteMessage(messageId: string): Promise<MessageRemoved> {
    return this.delete(`/messages/${path(messageId)}`);
  }

  messageProof(messageId: string): Promise<ProofObject> {
    return this.get(`/messages/${path(messageId)}/proof`);
  }

  // ------------------------------------------------------------ files (ciphertext only)

  uploadFile(conversationId: string, blob: Blob, onProgress: (fraction: number) => void): Promise<FileUploaded> {
    return this.upload(`/files${query({ conversation_id: conversationId })}`, blob, onProgress);
  }

  downloadFile(fileId: string, onChunk: (data: Uint8Array) => Promise<void>, onProgress: (fraction: number) => void, expected?: number): Promise<void> {
    return this.download(`/files/${path(fileId)}`, onChunk, onProgress, expected);
  }

  // ------------------------------------------------------------ the live connection

  /** The WebSocket of SPEC §7 on this page's origin (authenticated by its first frame). */
  liveUrl(): string {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${API}/ws`;
  }

  // ------------------------------------------------------------ the ledger (public)

  ledgerInfo(): Promise<LedgerInfo> {
    return this.get("/ledger/info", NO_AUTH);
  }

  consistency(fromSize: number, toSize: number): Promise<ConsistencyProof> {
    return this.get(`/ledger/consistency${query({ from_size: fromSize, to_size: toSize })}`, NO_AUTH);
  }
}

export const api = new ApiClient();
