/**
 * Device pinning (SPEC §11), the rules without storage: the browser remembers the confirmed device
 * key ids of every account it talks to, its own included. First sight pins what is published
 * (trust on first use). After that a device not seen before is unconfirmed: nothing is sealed to
 * it until the user confirms it (or revokes it, for the own account); the pin never grows by
 * itself. A device that is gone (revoked) is dropped from the pin: sealing to fewer reveals nothing.
 */
import type { PinRecord } from "./db";

export interface PinUpdate {
  /** What to store (null: nothing to store yet). */
  pin: PinRecord | null;
  added: string[];
  removed: string[];
}

const sortedSet = (ids: Iterable<string>): string[] => [...new Set(ids)].sort();

/** Reconcile the stored pin with the published `current` key ids (`own`: this device's key). */
export function reconcilePin(id: string, stored: PinRecord | null, current: string[], own: string[], now: string): PinUpdate {
  const published = sortedSet([...current, ...own]);
  if (!stored) {
    // first sight; a pin whose devices were all removed (a rotation) is still a pin
    return { pin: published.length ? { id, keyIds: published, pinnedAt: now, changed: null } : null, added: [], removed: [] };
  }
  const removed = stored.keyIds.filter((k) => !published.includes(k));
  const keyIds = stored.keyIds.filter((k) => published.includes(k));
  const added = published.filter((k) => !keyIds.includes(k));
  const changed = added.length ? { from: stored.changed?.from ?? stored.keyIds, to: published, seenAt: stored.changed?.seenAt ?? now } : null;
  const verified = added.length || removed.length ? false : stored.verified;
  return { pin: { ...stored, keyIds, changed, verified }, added, removed };
}

/** Published key ids the user has not confirmed. */
export function unconfirmedOf(stored: PinRecord | null, current: string[], own: string[]): string[] {
  if (!stored) return [];
  return sortedSet(current).filter((k) => !stored.keyIds.includes(k) && !own.includes(k));
}

/** The user confirmed the devices published now. */
export function confirmPin(id: string, current: string[], own: string[], now: string, verified = false): PinRecord {
  return { id, keyIds: sortedSet([...current, ...own]), pinnedAt: now, changed: null, verified };
}
