/**
 * The own-account device banner (SPEC §11): a device this browser has not seen on the account is
 * shown at the top of every screen until the user says it was them or revokes it. Until then
 * nothing is sealed to it (the messenger refuses to send). It appears on a `device_added` frame,
 * on a `key_changed` frame for this account, and whenever the account's keys are fetched.
 */
import type { Messenger } from "../messenger";
import type { LiveConnection } from "../ws";
import { clear, h, messageOf } from "./dom";
import { withRecentAuth } from "./reauth";

export class DeviceAlerts {
  private box: HTMLElement | null = null;
  /** Device names from `device_added` frames (the directory does not carry them). */
  private labels = new Map<string, string>();
  private rendering: Promise<void> = Promise.resolve();
  private off: (() => void)[] = [];

  constructor(
    private readonly messenger: Messenger,
    live: LiveConnection,
  ) {
    const me = messenger.me.id;
    this.off.push(live.onFrame((f) => {
      if ((f.type === "device_added" || f.type === "key_changed") && f.user_id === me) {
        if (f.type === "device_added" && f.key_id && f.label) this.labels.set(f.key_id, String(f.label));
        messenger.forgetKeys(me);
        this.refresh(true);
      }
    }));
    this.off.push(
      messenger.keyChanged.on((c) => c.userId === me && this.refresh()),
      messenger.trustChanged.on((u) => u === me && this.refresh()),
      live.onState((s) => s === "ready" && this.refresh(true)),
    );
  }

  stop(): void {
    for (const off of this.off) off();
    this.off = [];
    this.box = null;
  }

  /** Render into `box` (a new shell gets a new box) and check the account's devices now. */
  mount(box: HTMLElement): void {
    this.box = box;
    this.refresh(true);
  }

  refresh(fetch = false): void {
    this.rendering = this.rendering.then(() => this.render(fetch)).catch(() => undefined);
  }

  private async render(fetch: boolean): Promise<void> {
    const box = this.box;
    if (!box?.isConnected) return;
    const me = this.messenger.me.id;
    const entry = await this.messenger.keysOf(me, fetch);
    const fresh = await this.messenger.unconfirmed(me);
    const when = (k: string): string => {
      const at = entry.createdAt.get(k);
      return at ? new Date(at).toLocaleString() : "an unknown date";
    };
    clear(
      box,
      fresh.map((keyId) => {
        const err = h("p", { class: "error", role: "alert", hidden: true });
        const label = this.labels.get(keyId);
        return h(
          "div",
          { class: "banner danger device-added", role: "alert", dataset: { keyId } },
          h("p", null, h("strong", null, `A new device was added to your account on ${when(keyId)}`), label ? ` (“${label}”)` : "", " — if this was not you, revoke it. Until you decide, your messages are not encrypted for it."),
          h("p", { class: "mono small" }, `Device key ${keyId}`, entry.logStatus.get(keyId) === "anchored" ? "" : ` · log: ${entry.logStatus.get(keyId)}`),
          err,
          h(
            "div",
            { class: "banner-actions" },
            h("button", { type: "button", onclick: () => void this.act(err, () => this.messenger.acceptKeys(me)) }, "This was me"),
            h("button", { type: "button", class: "danger", onclick: () => void this.act(err, () => withRecentAuth(this.messenger.api, "Revoking a device needs your password again.", () => this.messenger.revokeDevice(keyId))) }, "Revoke this device"),
          ),
        );
      }),
    );
  }

  private async act(err: HTMLElement, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (ex) {
      err.hidden = false;
      err.textContent = messageOf(ex);
    }
  }
}
