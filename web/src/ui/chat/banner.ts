/**
 * The warnings above a conversation about its members' keys: none published yet, a log proof that
 * fails, keys not anchored yet, and new devices to confirm (nothing is sealed to them until then).
 */
import type { Messenger } from "../../messenger";
import { h } from "../dom";
import { safetyDialog } from "./dialogs";
import type { ConversationPane } from "./pane";
import type { Conversation } from "./store";

/** The banners of the open conversation (`active`), drawn again whenever keys or trust change. */
export class KeyBanners {
  constructor(
    private readonly messenger: Messenger,
    private readonly pane: ConversationPane,
    private readonly active: () => Conversation | null,
  ) {}

  async render(): Promise<void> {
    const conv = this.active();
    const box = this.pane.bannerBox();
    if (!conv || !box) return;
    const peers = conv.summary.members.filter((m) => m !== this.messenger.me.id);
    this.pane.setBanners(box, await keyBanners(this.messenger, peers, { verify: (p) => void this.safety([p]), confirmed: () => void this.render() }));
  }

  safety(peers: string[]): Promise<void> {
    return safetyDialog(this.messenger, peers, () => void this.render());
  }

  /** A `key_changed` frame: forget the user's keys; ask again at once if they are in the open conversation. */
  async keysChanged(userId: string): Promise<void> {
    this.messenger.forgetKeys(userId);
    if (!this.active()?.summary.members.includes(userId)) return;
    await this.messenger.keysOf(userId, true).catch(() => undefined);
    void this.render();
  }
}

export interface BannerActions {
  verify(peer: string): void;
  /** The user confirmed the new keys of `peer`. */
  confirmed(peer: string): void;
}

async function keyBanners(messenger: Messenger, peers: string[], actions: BannerActions): Promise<HTMLElement[]> {
  const notes: HTMLElement[] = [];
  for (const peer of peers) {
    try {
      notes.push(...(await peerBanners(messenger, peer, actions)));
    } catch {
      /* keys unavailable: sending shows the error */
    }
  }
  return notes;
}

async function peerBanners(messenger: Messenger, peer: string, actions: BannerActions): Promise<HTMLElement[]> {
  const name = messenger.nameOf(peer);
  const entry = await messenger.keysOf(peer);
  if (entry.keys.length === 0) {
    return [h("div", { class: "banner info", role: "status" }, `${name} has not set up encryption keys yet; messages cannot be sent to them until they log in once.`)];
  }
  const notes: HTMLElement[] = [];
  const states = [...entry.logStatus.values()];
  if (states.includes("invalid")) {
    notes.push(h("div", { class: "banner danger", role: "alert" }, `The transparency-log proof of one of ${name}'s keys does not verify. Messages to ${name} are blocked: compare safety numbers.`));
  } else if (states.some((s) => s === "pending" || s === "logged")) {
    notes.push(h("div", { class: "banner info key-pending", role: "status" }, `Pending: one of ${name}'s keys is not anchored on chain yet (the ledger anchors within seconds).`));
  }
  if ((await messenger.unconfirmed(peer)).length) {
    notes.push(
      h(
        "div",
        { class: "banner warning key-change", role: "alert" },
        h("p", null, h("strong", null, `${name}'s security keys changed. `), `${name} may have a new device, or someone may be trying to intercept your messages. Nothing is sent to the new device until you confirm it; compare the safety number with ${name} over another channel.`),
        h(
          "div",
          { class: "banner-actions" },
          h("button", { type: "button", onclick: () => actions.verify(peer) }, "Verify safety number"),
          h("button", { type: "button", class: "secondary", onclick: async () => (await messenger.acceptKeys(peer), actions.confirmed(peer)) }, "Confirm new keys"),
        ),
      ),
    );
  }
  return notes;
}
