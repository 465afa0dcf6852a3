/**
 * Device-local storage in IndexedDB: this browser's device keys per account (WebCrypto CryptoKey
 * objects, stored by structured clone so non-extractable private keys stay non-extractable) and
 * the pinned key ids of peers (trust on first use; a change raises a key-change warning).
 */
import type { DeviceKeys } from "./crypto/keys";

const DB_NAME = "chainchat";
const DB_VERSION = 1;

export interface PinRecord {
  /** `${owner}:${peer}` */
  id: string;
  keyIds: string[];
  pinnedAt: string;
  /** Set when the peer's published keys differ from the pinned ones and the user has not accepted. */
  changed?: { from: string[]; to: string[]; seenAt: string } | null;
  verified?: boolean;
}

let dbPromise: Promise<IDBDatabase> | null = null;

function open(): Promise<IDBDatabase> {
  dbPromise ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains("devices")) db.createObjectStore("devices");
      if (!db.objectStoreNames.contains("pins")) db.createObjectStore("pins", { keyPath: "id" });
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
