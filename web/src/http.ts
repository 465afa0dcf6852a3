/**
 * The transport under the gateway's HTTP API (SPEC §7): JSON requests with the bearer token, one
 * transparent refresh on 401, errors as ApiError carrying the SPEC's {code, message}, uploads with
 * progress (XHR: fetch has no upload progress) and streamed downloads with progress.
 *
 * Tokens are out of reach of scripts (SPEC §11): the refresh token lives only in the gateway's
 * HttpOnly cookie (path /api/v1/auth), the access token only in this object's memory. A page
 * load gets a fresh access token from the cookie (`restore`). Tabs share the cookie and each
 * refresh rotates it, so refreshes are serialised across tabs with the Web Locks API: a tab that
 * waited sends the cookie the previous one received, never the spent one (a reuse would end the
 * session for every tab).
 *
 * The routes themselves are methods of `ApiClient` (api.ts): nothing outside it names a path.
 */
import type { TokenReply, UserPublic } from "./wire";

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

const REAUTH_HEADER = "X-Reauth-Token";
const REAUTH_LIFETIME_MS = 300_000;
const REAUTH_MARGIN_MS = 10_000;

interface StoredSession {
  access_token: string;
  expires_at: number;
  user: UserPublic;
}

// where earlier versions kept both tokens in localStorage: removed on start
const LEGACY_SESSION_KEY = "chainchat.session";
// not a secret, only a hint that this browser holds a refresh cookie (scripts cannot see the
// cookie itself): without it a page load does not ask, so a fresh browser makes no failing call
const SIGNED_IN_HINT = "chainchat.signed-in";
const REFRESH_LOCK = "chainchat-refresh";

type Listener = (session: StoredSession | null) => void;

async function errorFrom(resp: Response): Promise<ApiError> {
  let code = "http_error";
  let message = `The server answered HTTP ${resp.status}.`;
  try {
    const body = await resp.json();
    if (body && typeof body === "object" && body.error) {
      code = String(body.error.code ?? code);
      message = String(body.error.message ?? message);
    }
  } catch {
    /* not JSON: keep the generic message */
  }
  const retry = resp.headers.get("Retry-After");
  const seconds = retry && /^\d+$/.test(retry) ? Number(retry) : null;
  if (resp.status === 429 && seconds !== null) message = `${message} Try again in ${seconds} s.`;
  return new ApiError(resp.status, code, message, seconds);
}

export class HttpClient {
  private session: StoredSession | null = null;
  private refreshing: Promise<void> | null = null;
  private listeners = new Set<Listener>();
  // recent authentication of this session: in memory only, gone with the page
  private recentAuth: { token: string; expiresAt: number } | null = null;

  // globalThis: the module is also imported where no DOM storage exists (vitest in Node); every use
  // below tolerates its absence
  constructor(private readonly storage: Storage = globalThis.localStorage) {
    try {
      storage.removeItem(LEGACY_SESSION_KEY);
    } catch {
      /* storage may be unavailable: nothing was kept there then */
    }
  }

  private hint(signedIn: boolean): void {
    try {
      if (signedIn) this.storage.setItem(SIGNED_IN_HINT, "1");
      else this.storage.removeItem(SIGNED_IN_HINT);
    } catch {
      /* without storage a reload just asks for the password */
    }
  }

  /** On page load: an access token from the refresh cookie, if the browser has a live one. */
  async restore(): Promise<boolean> {
    let hinted = false;
    try {
      hinted = this.storage.getItem(SIGNED_IN_HINT) === "1";
    } catch {
      hinted = false;
    }
    if (!hinted) return false;
    try {
      await this.refresh();
    } catch {
      return false;
    }
    return this.session !== null;
  }

  get user(): UserPublic | null {
    return this.session?.user ?? null;
  }

  get loggedIn(): boolean {
    return this.session !== null;
  }

  onSessionChange(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private setSession(session: StoredSession | null): void {
    if (!session) this.recentAuth = null;
    const changed = session !== null || this.session !== null;
    this.session = session;
    this.hint(session !== null);
    if (changed) for (const fn of this.listeners) fn(session);
  }

  adoptTokens(reply: TokenReply): void {
    if (reply.reauth_token) this.recentAuth = { token: reply.reauth_token, expiresAt: Date.now() + REAUTH_LIFETIME_MS };
    // reply.refresh_token is not kept: the gateway set it as this browser's HttpOnly cookie
    this.setSession({
      access_token: reply.access_token,
      expires_at: Date.now() + reply.expires_in * 1000,
      user: reply.user ?? this.session?.user,
    });
  }

  updateUser(user: UserPublic): void {
    if (this.session) this.setSession({ ...this.session, user });
  }

  clear(): void {
    this.setSession(null);
  }

  /** Whether a reauth token of this session is at hand (sent with every changing request). */
  get recentlyAuthenticated(): boolean {
    return this.recentAuth !== null && this.recentAuth.expiresAt - Date.now() > REAUTH_MARGIN_MS;
  }

  /** Keep the token of a fresh reauthentication (sent with every changing request until it expires). */
  protected rememberReauth(token: string, expiresInS: number): void {
    this.recentAuth = { token, expiresAt: Date.now() + expiresInS * 1000 };
  }

  /** A fresh-enough access token (refreshed when it expires within 30 s). */
  async accessToken(): Promise<string> {
    if (!this.session) throw new ApiError(401, "not_logged_in", "Please log in.");
    if (this.session.expires_at - Date.now() < 30_000) await this.refresh();
    return this.session!.access_token;
  }

  /** A new access token from the refresh cookie (one at a time across this browser's tabs). */
  async refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const resp = await withRefreshLock(() => fetch(`${API}/auth/refresh`, { method: "POST", credentials: "same-origin" }));
        if (!resp.ok) {
          const err = await errorFrom(resp);
          if (resp.status === 401 || resp.status === 403) this.clear();
          throw err;
        }
        this.adoptTokens((await resp.json()) as TokenReply);
      } catch (err) {
        if (err instanceof ApiError) throw err;
        throw new ApiError(0, "unreachable", "Cannot reach the server. Check your connection.");
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  private async send(method: string, path: string, body: unknown, auth: boolean): Promise<Response> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth) headers["Authorization"] = `Bearer ${await this.accessToken()}`;
    if (auth && method !== "GET" && this.recentlyAuthenticated) headers[REAUTH_HEADER] = this.recentAuth!.token;
    try {
      return await fetch(`${API}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, "unreachable", "Cannot reach the server. Check your connection.");
    }
  }

  /** One JSON request below /api/v1; returns the decoded body (null for 204). */
  protected async request<T>(method: string, path: string, body?: unknown, opts: { auth?: boolean } = {}): Promise<T> {
    const auth = opts.auth ?? true;
    let resp = await this.send(method, path, body, auth);
    if (resp.status === 401 && auth && this.session) {
      await this.refresh();
      resp = await this.send(method, path, body, auth);
    }
    if (!resp.ok) {
      const err = await errorFrom(resp);
      if (resp.status === 401 && auth) this.clear();
      throw err;
    }
    if (resp.status === 204) return null as T;
    const text = await resp.text();
    return (text ? JSON.parse(text) : null) as T;
  }

  protected get<T>(path: string, opts?: { auth?: boolean }): Promise<T> {
    return this.request<T>("GET", path, undefined, opts);
  }

  protected post<T>(path: string, body?: unknown, opts?: { auth?: boolean }): Promise<T> {
    return this.request<T>("POST", path, body ?? {}, opts);
  }

  protected put<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("PUT", path, body ?? {});
  }

  protected delete<T>(path: string): Promise<T> {
    return this.request<T>("DELETE", path);
  }

  /** Upload bytes as application/octet-stream, reporting progress (0..1). */
  protected async upload<T>(path: string, blob: Blob, onProgress: (fraction: number) => void): Promise<T> {
    const token = await this.accessToken();
    return new Promise<T>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${API}${path}`);
      xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) onProgress(e.loaded / e.total);
      };
      xhr.onerror = () => reject(new ApiError(0, "unreachable", "The upload failed: the server could not be reached."));
      xhr.onload = () => {
        let body: any = null;
        try {
          body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
        } catch {
          /* keep null */
        }
        if (xhr.status >= 200 && xhr.status < 300) {
          onProgress(1);
          resolve(body as T);
        } else {
          const e = body?.error ?? {};
          reject(new ApiError(xhr.status, String(e.code ?? "http_error"), String(e.message ?? `The upload failed (HTTP ${xhr.status}).`)));
        }
      };
      xhr.send(blob);
    });
  }

  /** Stream a download, handing each piece to `onChunk`; progress uses `expected` when the
   *  server sends no Content-Length. */
  protected async download(path: string, onChunk: (data: Uint8Array) => Promise<void>, onProgress: (fraction: number) => void, expected?: number): Promise<void> {
    let resp = await fetch(`${API}${path}`, { headers: { Authorization: `Bearer ${await this.accessToken()}` } });
    if (resp.status === 401) {
      await this.refresh();
      resp = await fetch(`${API}${path}`, { headers: { Authorization: `Bearer ${await this.accessToken()}` } });
    }
    if (!resp.ok || !resp.body) throw await errorFrom(resp);
    const total = Number(resp.headers.get("Content-Length")) || expected || 0;
    const reader = resp.body.getReader();
    let received = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      await onChunk(value);
      if (total) onProgress(Math.min(1, received / total));
    }
    onProgress(1);
  }
}

/** Run `fn` holding the browser-wide refresh lock (Web Locks), or directly where there are none. */
async function withRefreshLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (!locks) return fn();
  return locks.request(REFRESH_LOCK, fn);
}

