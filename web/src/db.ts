/**
 * Device-local storage in IndexedDB: this browser's device keys per account (WebCrypto CryptoKey
 * objects, stored by structured clone so non-extractable private keys stay non-extractable), the
 * confirmed device key ids of every account talked to, this one's own included (trust on first
 * use; a new device waits for the user's confirmation), and the pinned ledger with the largest
 * verified tree head.
 */
import type { DeviceKeys } from "./crypto/keys";

const DB_NAME = "chainchat";
const DB_VERSION = 2;

export interface PinRecord {
  /** `${owner}:${peer}` (the owner's own account too: `${owner}:${owner}`) */
  id: string;
  /** The confirmed device key ids: nothing is sealed to a device that is not in here. */
  keyIds: string[];
  pinnedAt: string;
  /** Set when the published keys include devices the user has not confirmed yet. */
  changed?: { from: string[]; to: string[]; seenAt: string } | null;
  verified?: boolean;
}

/** The ledger this browser trusts, per account: from the build (VITE_CHAINCHAT_LEDGER) or the
 *  first /ledger/info seen; the largest tree head verified on chain; the user's RPC URL. */
export interface LedgerRecord {
  pin: { chain_id: number; contract_address: string; source: "config" | "first_use" } | null;
  head: { tree_size: number; root_hash: string; head_index: number | null } | null;
  rpcUrl: string | null;
}

let dbPromise: Promise<IDBDatabase> | null = null;

function open(): Promise<IDBDatabase> {
  dbPromise ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains("devices")) db.createObjectStore("devices");
      if (!db.objectStoreNames.contains("pins")) db.createObjectStore("pins", { keyPath: "id" });
      if (!db.objectStoreNames.contains("ledger")) db.createObjectStore("ledger");
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return dbPromise;
}

async function run<T>(store: string, mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await open();
  return new Promise<T>((resolve, reject) => {
    const tx = db.transaction(store, mode);
    const req = fn(tx.objectStore(store));
    tx.oncomplete = () => resolve(req.result as T);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export async function loadDevice(userId: string): Promise<DeviceKeys | null> {
  return (await run<DeviceKeys | undefined>("devices", "readonly", (s) => s.get(userId))) ?? null;
}

export async function saveDevice(userId: string, keys: DeviceKeys): Promise<void> {
  await run("devices", "readwrite", (s) => s.put(keys, userId));
}

export async function deleteDevice(userId: string): Promise<void> {
  await run("devices", "readwrite", (s) => s.delete(userId));
}

export async function loadPin(owner: string, peer: string): Promise<PinRecord | null> {
  return (await run<PinRecord | undefined>("pins", "readonly", (s) => s.get(`${owner}:${peer}`))) ?? null;
}

export async function savePin(pin: PinRecord): Promise<void> {
  await run("pins", "readwrite", (s) => s.put(pin));
}

/** Keys this browser replaced (rotation): kept, non-extractable, to read the history sealed to them. */
export async function loadRetired(userId: string): Promise<DeviceKeys[]> {
  return (await run<DeviceKeys[] | undefined>("devices", "readonly", (s) => s.get(`${userId}:retired`))) ?? [];
}

export async function saveRetired(userId: string, keys: DeviceKeys[]): Promise<void> {
  await run("devices", "readwrite", (s) => s.put(keys, `${userId}:retired`));
}

export async function loadLedger(owner: string): Promise<LedgerRecord> {
  return (await run<LedgerRecord | undefined>("ledger", "readonly", (s) => s.get(owner))) ?? { pin: null, head: null, rpcUrl: null };
}

export async function saveLedger(owner: string, record: LedgerRecord): Promise<void> {
  await run("ledger", "readwrite", (s) => s.put(record, owner));
}
