/**
 * Proofs in the background: each message's badge follows what the ledger proves about it. The
 * ledger logs a message a moment after it is stored (and says 404 until then), so a fresh message
 * waits for the "anchored" frame, with a few late polls in case that frame was missed.
 */
import type { ChatMessage, Messenger } from "../../messenger";

const FRESH_MS = 10_000;
const WORKERS = 3;
const POLLS = 4;

export type Anchor = ChatMessage["anchor"];

/** The badge a proof check gives. */
export function anchorOf(status: "pending" | "anchored", check: { ok: boolean; reason?: string }): Anchor {
  if (!check.ok && check.reason !== "entry not yet in the log") return "invalid";
  if (status !== "anchored") return "pending";
  return check.ok ? "verified" : "anchored";
}

export class ProofQueue {
  private queue: ChatMessage[] = [];
  private polls = new Map<string, number>();
  private workers = 0;

  /** `current`: the message as it is now (null once gone); `changed`: its badge moved. */
  constructor(
    private readonly messenger: Messenger,
    private readonly current: (m: ChatMessage) => ChatMessage | null,
    private readonly changed: (m: ChatMessage, anchor: Anchor) => void,
  ) {}

  /** Ask once the ledger has had time to log it. */
  schedule(m: ChatMessage): void {
    const age = Date.now() - new Date(m.createdAt).getTime();
    if (age > FRESH_MS) this.ask(m);
    else setTimeout(() => this.ask(m), FRESH_MS - Math.max(0, age));
  }

  ask(m: ChatMessage): void {
    if (m.deleted || m.anchor === "verified" || m.anchor === "invalid") return;
    this.queue.push(m);
    while (this.workers < WORKERS && this.queue.length) {
      this.workers++;
      void this.work().finally(() => this.workers--);
    }
  }

  private async work(): Promise<void> {
    for (let queued = this.queue.shift(); queued; queued = this.queue.shift()) {
      const m = this.current(queued);
      if (!m) continue;
      try {
        const { proof, check } = await this.messenger.proofOf(m);
        const next = anchorOf(proof.status, check);
        if (next !== m.anchor) this.changed(m, next);
        // An "anchored" frame normally updates the badge; ask again in case it was missed.
        const polls = this.polls.get(m.id) ?? 0;
        if (next === "pending" && polls < POLLS) {
          this.polls.set(m.id, polls + 1);
          setTimeout(() => this.ask(m), 5000 * (polls + 1));
        }
      } catch {
        /* the badge stays as it is; the dialog shows errors */
      }
    }
  }
}
