// Argument parsing shared by the RPC API and the gateway.

import v8 from 'node:v8'
import vm from 'node:vm'
import { CID } from 'multiformats/cid'
import { KuboError, clientError } from './errors.js'

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True'])
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False'])

/** Boolean option parsed like Go's strconv.ParseBool (as Kubo does); a bare `?flag` means true. */
export function boolOption (query, name, defaultValue) {
  if (!query.has(name)) return defaultValue
  const value = query.get(name)
  if (value === '') return true
  if (TRUE.has(value)) return true
  if (FALSE.has(value)) return false
  throw clientError(`Could not convert value "${value}" to type "bool" (for option "-${name}")`)
}

/** Integer option; `undefined` when absent. */
export function intOption (query, name) {
  if (!query.has(name)) return undefined
  const value = query.get(name)
  if (!/^[+-]?\d+$/.test(value)) {
    throw clientError(`Could not convert value "${value}" to type "int" (for option "-${name}")`)
  }
  const n = Number(value)
  if (!Number.isSafeInteger(n)) {
    throw clientError(`Could not convert value "${value}" to type "int" (for option "-${name}")`)
  }
  return n
}

export function parseCid (text) {
  const cid = CID.parse(text)
  if (cid.code !== 0x70 && cid.code !== 0x55) {
    // only dag-pb (UnixFS) and raw blocks are served by this node
    throw new Error(`unsupported codec 0x${cid.code.toString(16)}`)
  }
  return cid
}

/**
 * Parse an IPFS path argument as Kubo accepts it: `<cid>`, `<cid>/sub/path`,
 * `/ipfs/<cid>` or `/ipfs/<cid>/sub/path`.
 * Returns { cid, path } where path is '' or 'sub/path'.
 */
export function parseIpfsPath (raw) {
  let rest = raw
  if (rest.startsWith('/ipfs/')) {
    rest = rest.slice('/ipfs/'.length)
  } else if (rest.startsWith('/')) {
    throw new KuboError(`invalid path ${JSON.stringify(raw)}: unsupported namespace`)
  }
  const [first, ...segments] = rest.split('/')
  if (first === '') {
    throw new KuboError(`invalid path ${JSON.stringify(raw)}: path does not have enough components`)
  }
  let cid
  try {
    cid = parseCid(first)
  } catch (err) {
    throw new KuboError(`invalid path ${JSON.stringify(raw)}: invalid cid: ${err.message}`)
  }
  return { cid, path: segments.filter(s => s !== '').join('/') }
}

/** Simple async mutex: run(fn) executes fn after all previously queued fns. */
export class Mutex {
  #tail = Promise.resolve()

  run (fn) {
    const result = this.#tail.then(() => fn())
    this.#tail = result.then(() => {}, () => {})
    return result
  }
}

/**
 * Shared/exclusive gate: imports and pin changes hold it shared; garbage
 * collection holds it exclusively so it never deletes the blocks of an
 * upload that has not been pinned yet.
 */
export class Gate {
  #active = 0
  #exclusive = null
  #idle = []

  async enter () {
    while (this.#exclusive != null) await this.#exclusive
    this.#active++
    let left = false
    return () => {
      if (left) return
      left = true
      this.#active--
      if (this.#active === 0) for (const resolve of this.#idle.splice(0)) resolve()
    }
  }

  async exclusive (fn) {
    while (this.#exclusive != null) await this.#exclusive
    let release
    this.#exclusive = new Promise(resolve => { release = resolve })
    try {
      while (this.#active > 0) await new Promise(resolve => this.#idle.push(resolve))
      return await fn()
    } finally {
      this.#exclusive = null
      release()
    }
  }

  get active () { return this.#active }
}

/**
 * Streaming large files churns through many short-lived 256 KiB buffers.
 * V8 frees them only when it feels external-memory pressure (tens of MiB
 * later), which shows up as RSS growth proportional to the transfer. A
 * MemoryGuard counts streamed bytes and, every `every` bytes, runs a
 * collection if array-buffer memory is above `threshold`, so RSS stays flat.
 */
export class MemoryGuard {
  #gc
  #pending = 0

  constructor ({ every = 4 * 1024 * 1024, threshold = 24 * 1024 * 1024 } = {}) {
    this.every = every
    this.threshold = threshold
    this.#gc = exposeGc()
  }

  /** Account for `n` streamed bytes. */
  tick (n) {
    this.#pending += n
    if (this.#pending < this.every) return
    this.#pending = 0
    if (this.#gc == null || process.memoryUsage().arrayBuffers < this.threshold) return
    // the buffers are short-lived: a young-generation collection frees them cheaply
    this.#gc({ type: 'minor' })
    if (process.memoryUsage().arrayBuffers > 2 * this.threshold) this.#gc()
  }

  /** Pass an (async) iterable of chunks through, counting them. */
  async * count (source) {
    for await (const chunk of source) {
      this.tick(chunk.length)
      yield chunk
    }
  }
}

let cachedGc
function exposeGc () {
  if (cachedGc !== undefined) return cachedGc
  if (typeof globalThis.gc === 'function') {
    cachedGc = globalThis.gc
    return cachedGc
  }
  try {
    v8.setFlagsFromString('--expose-gc')
    cachedGc = vm.runInNewContext('gc')
  } catch {
    cachedGc = null
  }
  return cachedGc
}
