// The subset of Kubo's RPC API (/api/v0/...) that ChainChat's files service uses.

import { once } from 'node:events'
import * as dagPb from '@ipld/dag-pb'
import busboy from 'busboy'
import { UnixFS } from 'ipfs-unixfs'
import { importFile } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { readFileRange } from './reader.js'
import { KuboError, clientError, errorBody, requiredArg, toKuboError } from './errors.js'
import { Gate, MemoryGuard, Mutex, boolOption, intOption, parseIpfsPath } from './util.js'

// Kubo's default importer settings (Import.UnixFSChunker = size-262144,
// Import.UnixFSFileMaxLinks = 174, balanced layout, UnixFS "file" leaves).
export const KUBO_CHUNK_SIZE = 262144
export const KUBO_MAX_LINKS = 174
const MAX_CHUNK_SIZE = 1024 * 1024

/**
 * A leaf's UnixFS metadata without its bytes. The importer's file reducer
 * only reads the leaf's data length; holding the real UnixFS object (which
 * references the 256 KiB chunk) for every leaf until the parent node is built
 * would keep up to 174 chunks (43.5 MiB) of each upload in memory.
 */
class LeafInfo extends UnixFS {
  constructor (length) {
    super({ type: 'file' })
    this.data = { length } // only the length is kept; never marshalled
  }
}

/**
 * Same leaves as the importer's default buffer importer (raw blocks, or
 * dag-pb nodes with a UnixFS "file" carrying the chunk) but lean in memory.
 */
function leanBufferImporter ({ cidVersion, rawLeaves }) {
  return async function * bufferImporter (file, blockstore) {
    for await (const chunk of file.content) {
      yield async () => {
        let block, cid
        if (rawLeaves) {
          block = chunk
          cid = CID.createV1(raw.code, await sha256.digest(block))
        } else {
          block = dagPb.encode({ Data: new UnixFS({ type: 'file', data: chunk }).marshal(), Links: [] })
          const digest = await sha256.digest(block)
          cid = cidVersion === 0 ? CID.createV0(digest) : CID.createV1(dagPb.code, digest)
        }
        await blockstore.put(cid, block)
        return { cid, size: BigInt(block.length), unixfs: rawLeaves ? undefined : new LeafInfo(chunk.length), block }
      }
    }
  }
}

/** Importer options that give the same DAG (hence CID) as `ipfs add` with these flags. */
export function kuboImporterOptions ({ cidVersion = 0, rawLeaves, chunkSize = KUBO_CHUNK_SIZE } = {}) {
  rawLeaves = rawLeaves ?? cidVersion === 1
  return {
    cidVersion,
    rawLeaves,
    chunker: fixedSize({ chunkSize }),
    layout: balanced({ maxChildrenPerNode: KUBO_MAX_LINKS }),
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    wrapWithDirectory: false,
    blockWriteConcurrency: 10,
    bufferImporter: leanBufferImporter({ cidVersion, rawLeaves })
  }
}

function parseChunker (value) {
  if (value == null || value === '') return KUBO_CHUNK_SIZE
  const m = /^size-(\d+)$/.exec(value)
  if (m != null) {
    const size = Number(m[1])
    if (size <= 0) throw new KuboError('chunk size must be greater than 0')
    if (size > MAX_CHUNK_SIZE) throw new KuboError(`chunker parameters may not exceed the maximum chunk size of ${MAX_CHUNK_SIZE}`)
    return size
  }
  if (/^(rabin|buzhash)/.test(value)) {
    throw new KuboError(`chunker "${value}" is not supported by this node (only size-N)`)
  }
  throw new KuboError(`unrecognized chunker option: ${value}`)
}

/** Kubo's multipart reader unescapes file names with url.QueryUnescape. */
function decodeFileName (name) {
  if (name == null) return ''
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '))
  } catch {
    return name
  }
}

const GO_ARCH = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm' }

export function createApi ({ node, version, heliaVersion, origins, memory = new MemoryGuard() }) {
  const { helia, fs, identity } = node
  const gate = new Gate()
  const pinLock = new Mutex()

  const getBlock = node.getBlock

  /** Depth-first walk of a DAG (dag-pb and raw only), yielding every CID once. */
  async function * walk (root, { signal } = {}) {
    const seen = new Set()
    const stack = [root]
    while (stack.length > 0) {
      const cid = stack.pop()
      const key = cid.multihash.bytes.toString()
      if (seen.has(key)) continue
      seen.add(key)
      let bytes
      try {
        bytes = await getBlock(cid, signal)
      } catch (err) {
        throw toKuboError(err, { cid })
      }
      yield cid
      if (cid.code === dagPb.code) {
        const links = dagPb.decode(bytes).Links
        for (let i = links.length - 1; i >= 0; i--) stack.push(links[i].Hash)
      }
    }
  }

  async function pinRoot (cid, { recursive = true, verify = true } = {}) {
    return pinLock.run(async () => {
      let existing
      try {
        existing = await helia.pins.get(cid)
      } catch (err) {
        if (err.name !== 'NotFoundError') throw err
      }
      const depth = recursive ? Infinity : 0
      if (existing != null) {
        if (existing.depth === depth) return
        if (existing.depth > depth) throw new KuboError(`pin: ${cid} already pinned recursively`)
        for await (const _ of helia.pins.rm(cid)) {} // eslint-disable-line no-unused-vars
      }
      if (verify) {
        // make sure every block is local before Helia starts counting pinned blocks
        if (recursive) {
          for await (const _ of walk(cid)) {} // eslint-disable-line no-unused-vars
        } else {
          try { await getBlock(cid) } catch (err) { throw toKuboError(err, { cid }) }
        }
      }
      try {
        for await (const _ of helia.pins.add(cid, { depth, metadata: { cid: cid.toString() } })) {} // eslint-disable-line no-unused-vars
      } catch (err) {
        if (err.name === 'AlreadyPinnedError') return
        throw toKuboError(err, { cid })
      }
    })
  }

  async function resolveCid (arg) {
    const { cid, path } = parseIpfsPath(arg)
    if (path === '') return cid
    try {
      return (await fs.stat(cid, { path, offline: true })).cid
    } catch (err) {
      throw toKuboError(err, { cid })
    }
  }

  // ---------------------------------------------------------------- add
  async function add (req, res, query) {
    const cidVersion = intOption(query, 'cid-version') ?? 0
    if (cidVersion !== 0 && cidVersion !== 1) throw new KuboError(`unknown CID version: ${cidVersion}`)
    const rawLeaves = boolOption(query, 'raw-leaves', cidVersion === 1)
    const pin = boolOption(query, 'pin', true)
    const chunkSize = parseChunker(query.get('chunker'))
    const hash = query.get('hash')
    if (hash != null && hash !== '' && hash !== 'sha2-256') {
      throw new KuboError(`hash function "${hash}" is not supported by this node (only sha2-256)`)
    }
    for (const flag of ['trickle', 'wrap-with-directory', 'only-hash', 'inline', 'nocopy', 'fscache', 'recursive', 'hidden']) {
      if (boolOption(query, flag, false)) throw new KuboError(`option "${flag}" is not supported by this node`)
    }
    const options = kuboImporterOptions({ cidVersion, rawLeaves, chunkSize })

    let parser
    try {
      // field values decoded as latin1 map back to the original bytes
      parser = busboy({ headers: req.headers, preservePath: true, defCharset: 'latin1', defParamCharset: 'utf8', fileHwm: 256 * 1024 })
    } catch {
      throw clientError("file argument 'path' is required")
    }

    const results = []
    let aborted = false
    let current = null
    const controller = new AbortController()
    req.on('error', () => {})
    req.on('close', () => {
      if (req.complete) return
      aborted = true
      const err = new Error('request aborted by the client')
      controller.abort(err)
      current?.destroy(err)
      parser.destroy(err)
    })
    const leave = await gate.enter()
    try {
      if (aborted || req.destroyed) throw new Error('request aborted by the client')
      const finished = new Promise((resolve, reject) => {
        let chain = Promise.resolve()
        let failed = false
        const fail = (err) => {
          if (failed) return
          failed = true
          reject(err)
        }
        const importPart = (name, content, info) => {
          if (info.mimeType === 'application/x-directory' || info.mimeType === 'application/symlink') {
            fail(new KuboError('directories and symlinks are not supported by this node'))
            return
          }
          chain = chain.then(async () => {
            const result = await importFile({ content: memory.count(content) }, helia.blockstore, { ...options, signal: controller.signal })
            results.push({ name, cid: result.cid, size: result.size })
          })
          chain.catch(fail)
        }
        parser.on('file', (field, stream, info) => {
          current = stream
          if (failed) { stream.resume(); return }
          importPart(decodeFileName(info.filename), stream, info)
        })
        parser.on('field', (field, value, info) => {
          // a part without a filename: small inline content
          if (failed) return
          if (info.valueTruncated) {
            fail(clientError('a form part without a filename is limited to 1 MiB; send the file with a filename'))
            return
          }
          importPart('', [Buffer.from(value, 'latin1')], info)
        })
        parser.on('close', () => { chain.then(resolve, fail) })
        parser.on('error', (err) => fail(aborted ? err : clientError(err.message)))
      })
      req.pipe(parser)

      try {
        await finished
      } catch (err) {
        if (aborted) throw err
        // stop reading the upload but keep the connection usable for the answer
        req.unpipe(parser)
        req.resume()
        throw err
      }
      if (results.length === 0) throw clientError("file argument 'path' is required")
      if (aborted || req.socket?.destroyed) throw new Error('request aborted by the client')
      if (pin) {
        for (const r of results) await pinRoot(r.cid, { verify: false })
      }
    } finally {
      leave()
    }
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'X-Chunked-Output': '1',
      Trailer: 'X-Stream-Error'
    })
    for (const r of results) {
      const hash = r.cid.toString()
      res.write(JSON.stringify({ Name: r.name !== '' ? r.name : hash, Hash: hash, Size: String(r.size) }) + '\n')
    }
    res.end()
  }

  // ---------------------------------------------------------------- cat
  async function cat (req, res, query) {
    const args = query.getAll('arg')
    if (args.length === 0) throw requiredArg('ipfs-path')
    let offset = intOption(query, 'offset') ?? 0
    const length = intOption(query, 'length')
    if (offset < 0) throw new KuboError('cannot specify negative offset')
    if (length != null && length < 0) throw new KuboError('cannot specify negative length')

    const files = []
    for (const arg of args) {
      const { cid, path } = parseIpfsPath(arg)
      let stats
      try {
        stats = await fs.stat(cid, { path: path || undefined, offline: true })
      } catch (err) {
        throw toKuboError(err, { cid })
      }
      if (stats.type === 'directory') throw new KuboError('this dag node is a directory')
      files.push({ cid: stats.cid, size: Number(stats.size) })
    }
    // offset/length span the concatenation of all arguments, like Kubo
    const plan = []
    let remaining = length ?? Infinity
    for (const f of files) {
      if (remaining <= 0) break
      if (offset >= f.size) { offset -= f.size; continue }
      const take = Math.min(f.size - offset, remaining)
      if (take > 0) plan.push({ ...f, offset, length: take })
      remaining -= take
      offset = 0
    }
    const total = plan.reduce((n, p) => n + p.length, 0)

    const controller = new AbortController()
    res.on('close', () => controller.abort())
    res.writeHead(200, {
      'Content-Type': 'text/plain',
      'X-Stream-Output': '1',
      'X-Content-Length': String(total),
      Trailer: 'X-Stream-Error'
    })
    try {
      for (const p of plan) {
        for await (const chunk of readFileRange(getBlock, p.cid, { offset: p.offset, length: p.length, signal: controller.signal })) {
          memory.tick(chunk.length)
          if (!res.write(chunk)) await once(res, 'drain', { signal: controller.signal })
        }
      }
    } catch (err) {
      if (controller.signal.aborted) return
      res.addTrailers({ 'X-Stream-Error': toKuboError(err).message })
    }
    res.end()
  }

  // ---------------------------------------------------------------- pins
  async function pinAdd (req, res, query) {
    const args = query.getAll('arg')
    if (args.length === 0) throw requiredArg('ipfs-path')
    const recursive = boolOption(query, 'recursive', true)
    const pins = []
    const leave = await gate.enter()
    try {
      for (const arg of args) {
        const cid = await resolveCid(arg)
        await pinRoot(cid, { recursive })
        pins.push(cid.toString())
      }
    } finally {
      leave()
    }
    sendJson(res, { Pins: pins })
  }

  async function pinRm (req, res, query) {
    const args = query.getAll('arg')
    if (args.length === 0) throw requiredArg('ipfs-path')
    const recursive = boolOption(query, 'recursive', true)
    const pins = []
    const leave = await gate.enter()
    try {
      for (const arg of args) {
        const cid = await resolveCid(arg)
        await pinLock.run(async () => {
          let existing
          try {
            existing = await helia.pins.get(cid)
          } catch (err) {
            if (err.name === 'NotFoundError') throw new KuboError('not pinned or pinned indirectly')
            throw err
          }
          if (!recursive && existing.depth !== 0) throw new KuboError(`${cid} is pinned recursively`)
          for await (const _ of helia.pins.rm(cid)) {} // eslint-disable-line no-unused-vars
        })
        pins.push(cid.toString())
      }
    } finally {
      leave()
    }
    sendJson(res, { Pins: pins })
  }

  async function listRoots () {
    const roots = []
    for await (const pin of helia.pins.ls()) {
      const shown = typeof pin.metadata?.cid === 'string' ? pin.metadata.cid : pin.cid.toString()
      roots.push({ cid: pin.cid, shown, type: pin.depth === 0 ? 'direct' : 'recursive' })
    }
    return roots
  }

  /** Map multihash → { shown, root } of every block reached through a recursive pin (roots excluded). */
  async function indirectBlocks (roots) {
    const rootKeys = new Set(roots.map(r => r.cid.multihash.bytes.toString()))
    const indirect = new Map()
    for (const root of roots) {
      if (root.type !== 'recursive') continue
      for await (const cid of walk(root.cid)) {
        const key = cid.multihash.bytes.toString()
        if (rootKeys.has(key) || indirect.has(key)) continue
        indirect.set(key, { shown: cid.toString(), root: root.shown })
      }
    }
    return indirect
  }

  async function pinLs (req, res, query) {
    const type = query.get('type') || 'all'
    if (!['all', 'recursive', 'direct', 'indirect'].includes(type)) {
      throw new KuboError(`invalid type '${type}', must be one of {direct, indirect, recursive, all}`)
    }
    const stream = boolOption(query, 'stream', false)
    const args = query.getAll('arg')
    const roots = await listRoots()
    const keys = {}

    if (args.length > 0) {
      let indirect = null
      for (const arg of args) {
        const cid = await resolveCid(arg)
        const key = cid.multihash.bytes.toString()
        const root = roots.find(r => r.cid.multihash.bytes.toString() === key)
        let found = null
        if (root != null && (type === 'all' || type === root.type)) {
          found = root.type
        } else if ((type === 'all' || type === 'indirect') && await helia.pins.isPinned(cid)) {
          indirect ??= await indirectBlocks(roots)
          const via = indirect.get(key)
          if (via != null) found = `indirect through ${via.root}`
        }
        if (found == null) throw new KuboError(`path '${arg}' is not pinned`)
        keys[cid.toString()] = { Type: found }
      }
    } else {
      for (const r of roots) {
        if (type === 'all' || type === r.type) keys[r.shown] = { Type: r.type }
      }
      if (type === 'all' || type === 'indirect') {
        for (const v of (await indirectBlocks(roots)).values()) {
          if (!(v.shown in keys)) keys[v.shown] = { Type: 'indirect' }
        }
      }
    }

    if (stream) {
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Chunked-Output': '1' })
      for (const [cid, v] of Object.entries(keys)) res.write(JSON.stringify({ Cid: cid, Type: v.Type }) + '\n')
      res.end()
      return
    }
    sendJson(res, { Keys: keys })
  }

  // ---------------------------------------------------------------- gc
  async function repoGc (req, res, query) {
    const quiet = boolOption(query, 'quiet', false)
    const removed = []
    await gate.exclusive(async () => {
      await helia.gc({
        onProgress: (evt) => {
          if (evt.type === 'helia:gc:deleted') removed.push(evt.detail.toString())
        }
      })
    })
    res.writeHead(200, { 'Content-Type': 'application/json', 'X-Chunked-Output': '1' })
    if (!quiet) for (const cid of removed) res.write(JSON.stringify({ Key: { '/': cid } }) + '\n')
    res.end()
  }

  // ---------------------------------------------------------------- id / version
  async function id (req, res, query) {
    const arg = query.get('arg')
    if (arg != null && arg !== '' && arg !== identity.peerId) {
      throw new KuboError('routing: not found')
    }
    sendJson(res, {
      ID: identity.peerId,
      PublicKey: identity.publicKey,
      Addresses: [],
      AgentVersion: `chainchat-helia/${version}/helia-${heliaVersion}`,
      Protocols: []
    })
  }

  async function versionCmd (req, res) {
    sendJson(res, {
      Version: version,
      Commit: '',
      Repo: '1',
      System: `${GO_ARCH[process.arch] ?? process.arch}/${process.platform}`,
      Golang: ''
    })
  }

  const commands = new Map([
    ['/api/v0/add', add],
    ['/api/v0/cat', cat],
    ['/api/v0/pin/add', pinAdd],
    ['/api/v0/pin/rm', pinRm],
    ['/api/v0/pin/ls', pinLs],
    ['/api/v0/repo/gc', repoGc],
    ['/api/v0/id', id],
    ['/api/v0/version', versionCmd]
  ])

  async function handle (req, res) {
    let url
    try {
      url = new URL(req.url, 'http://localhost')
    } catch {
      return sendText(res, 400, '400 Bad Request')
    }
    const command = commands.get(url.pathname.replace(/\/+$/, ''))
    if (command == null) return sendText(res, 404, '404 page not found')
    // like Kubo: refuse cross-origin browser requests to the RPC API
    const origin = req.headers.origin
    if (origin != null && !origins().includes(origin)) return sendText(res, 403, '403 - Forbidden')
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST')
      return sendText(res, 405, '405 - Method Not Allowed')
    }
    try {
      await command(req, res, url.searchParams)
    } catch (err) {
      const kerr = toKuboError(err)
      if (!(err instanceof KuboError) && !/aborted/.test(err?.message ?? '')) {
        process.stderr.write(`ipfs-node: ${url.pathname}: ${err?.stack ?? err}\n`)
      }
      if (res.headersSent) {
        if (!res.writableEnded) {
          res.addTrailers({ 'X-Stream-Error': kerr.message })
          res.end()
        }
        return
      }
      if (req.socket?.destroyed) return
      res.writeHead(kerr.status, { 'Content-Type': 'application/json' })
      res.end(errorBody(kerr))
    }
  }

  return { handle, gate }
}

function sendJson (res, body) {
  res.writeHead(200, { 'Content-Type': 'application/json' })
  res.end(JSON.stringify(body) + '\n')
}

function sendText (res, status, text) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' })
  res.end(text + '\n')
}
