/**
 * The live connection (SPEC §7 WebSocket /api/v1/ws): authenticates with its first frame, keeps
 * itself alive with pings, reconnects with bounded back-off and tells listeners when it is ready
 * again so they can catch up with `GET …/messages?after_seq=`.
 */
import type { ApiClient } from "./api";
import type { AckFrame, ClientFrame, ServerFrame } from "./wire";

export type { ClientFrame, ServerFrame };
type FrameListener = (frame: ServerFrame) => void;
type StateListener = (state: "connecting" | "ready" | "offline") => void;

export class LiveConnection {
  private ws: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private frameListeners = new Set<FrameListener>();
  private stateListeners = new Set<StateListener>();
  state: "connecting" | "ready" | "offline" = "offline";

  constructor(private readonly api: ApiClient) {}

  onFrame(fn: FrameListener): () => void {
    this.frameListeners.add(fn);
    return () => this.frameListeners.delete(fn);
  }

  onState(fn: StateListener): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  private setState(state: "connecting" | "ready" | "offline"): void {
    this.state = state;
    for (const fn of this.stateListeners) fn(state);
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.ws?.close(1000, "logout");
    this.ws = null;
    this.setState("offline");
  }

  send(frame: ClientFrame): boolean {
    if (this.ws && this.state === "ready") {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  /** Send a frame carrying `client_id` and wait for the server's `ack` (or `error`) for it. */
  request(frame: ClientFrame, clientId: string, timeoutMs: number): Promise<AckFrame> {
    return new Promise((resolve, reject) => {
      let off = (): void => undefined;
      const timer = setTimeout(() => {
        off();
        reject(new Error("The server did not acknowledge the message in time."));
      }, timeoutMs);
      off = this.onFrame((f) => {
        if ((f.type !== "ack" && f.type !== "error") || f.client_id !== clientId) return;
        clearTimeout(timer);
        off();
        if (f.type === "ack") resolve(f);
        else reject(new Error(String(f.message ?? f.code ?? "The server refused the message.")));
      });
      if (!this.send(frame)) {
        clearTimeout(timer);
        off();
        reject(new Error("The live connection is down."));
      }
    });
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.setState("connecting");
    let token: string;
    try {
      token = await this.api.accessToken();
    } catch {
      this.scheduleRetry();
      return;
    }
    const ws = new WebSocket(this.api.liveUrl());
    this.ws = ws;
    let readySeen = false;
    const markReady = (): void => {
      if (readySeen || this.ws !== ws) return;
      readySeen = true;
      this.attempt = 0;
      this.setState("ready");
      this.pingTimer = setInterval(() => this.send({ type: "ping" }), 25_000);
    };
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "auth", token }));
      // The gateway answers {"type":"ready"}; an open socket without it is usable after a while.
      setTimeout(() => ws.readyState === WebSocket.OPEN && markReady(), 3000);
    };
    ws.onmessage = (ev) => {
      let frame: ServerFrame;
      try {
        // the gateway's frames (wire.ts); an unknown `type` reaches no case of a listener's switch
        frame = JSON.parse(String(ev.data)) as ServerFrame;
      } catch {
        return;
      }
      if (frame.type === "ready") markReady();
      for (const fn of this.frameListeners) fn(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      if (this.pingTimer) clearInterval(this.pingTimer);
      this.ws = null;
      this.setState("offline");
      // 4001 (the gateway's "unauthorized"): the token was refused; refresh before trying again.
      if (ev.code === 4001 || ev.code === 4401 || ev.code === 1008) void this.api.refresh().catch(() => undefined);
      this.scheduleRetry();
    };
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    const delay = Math.min(15_000, 500 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt = Math.min(this.attempt + 1, 6);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }
}
