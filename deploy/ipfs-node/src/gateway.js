// Read-only path gateway: GET/HEAD /ipfs/<cid>[/path], streaming, with Range support.

import { once } from 'node:events'
import { toKuboError } from './errors.js'
import { readFileRange } from './reader.js'
import { MemoryGuard, parseIpfsPath } from './util.js'

/**
 * Parse a Range header against a file of `size` bytes.
 * Returns null (serve everything), 'unsatisfiable', or { start, end } (inclusive).
 * Several ranges in one header are answered with the whole file, as RFC 9110 allows.
 */
export function parseRange (header, size) {
  if (header == null) return null
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header.trim())
  if (m == null) return null
  const [, a, b] = m
  if (a === '' && b === '') return null
  if (a === '') {
    const suffix = Number(b)
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(a)
  if (start >= size) return 'unsatisfiable'
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
  if (end < start) return null // invalid range: ignore it
  return { start, end }
}

export function createGateway ({ node, memory = new MemoryGuard() }) {
  const { fs } = node

  function sendText (res, status, text, headers = {}) {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers })
    res.end(text + '\n')
  }

  async function handle (req, res) {
    res.setHeader('Access-Control-Allow-Origin', '*')
    res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS')
    res.setHeader('Access-Control-Allow-Headers', 'Range, If-None-Match')
    res.setHeader('Access-Control-Expose-Headers', 'Content-Range, Content-Length, X-Ipfs-Path, ETag')
    let url
    try {
      url = new URL(req.url, 'http://localhost')
    } catch {
      return sendText(res, 400, 'bad request')
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(200)
      return res.end()
    }
    if (!url.pathname.startsWith('/ipfs/')) return sendText(res, 404, '404 page not found')
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendText(res, 405, 'method not allowed', { Allow: 'GET, HEAD, OPTIONS' })
    }
    let pathname
    try {
      pathname = decodeURIComponent(url.pathname)
    } catch {
      return sendText(res, 400, 'invalid path encoding')
    }
    let cid, path
    try {
      ({ cid, path } = parseIpfsPath(pathname))
    } catch (err) {
      return sendText(res, 400, `failed to resolve ${pathname}: ${err.message}`)
    }
    let stats
    try {
      stats = await fs.stat(cid, { path: path || undefined, offline: true })
    } catch (err) {
      const kerr = toKuboError(err, { cid })
      const status = /not found|no link/.test(kerr.message) ? 404 : 500
      return sendText(res, status, `failed to resolve ${pathname}: ${kerr.message}`)
    }
    if (stats.type === 'directory') {
      return sendText(res, 501, `${pathname} is a directory; directory listings are not served by this gateway`)
    }

    const size = Number(stats.size)
    const etag = `"${stats.cid.toString()}"`
    const headers = {
      'Content-Type': 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'X-Ipfs-Path': pathname,
      'X-Ipfs-Roots': cid.toString(),
      'Cache-Control': 'public, max-age=29030400, immutable',
      'X-Content-Type-Options': 'nosniff'
    }
    const filename = url.searchParams.get('filename')
    if (filename) {
      const disposition = url.searchParams.get('download') === 'true' ? 'attachment' : 'inline'
      headers['Content-Disposition'] = `${disposition}; filename*=UTF-8''${encodeURIComponent(filename)}`
    }

    const inm = req.headers['if-none-match']
    if (inm != null && inm.split(',').map(s => s.trim().replace(/^W\//, '')).some(s => s === etag || s === '*')) {
      res.writeHead(304, { ETag: etag, 'Cache-Control': headers['Cache-Control'], 'X-Ipfs-Path': pathname })
      return res.end()
    }

    let range = parseRange(req.headers.range, size)
    const ifRange = req.headers['if-range']
    if (range != null && ifRange != null && ifRange !== etag) range = null
    if (range === 'unsatisfiable') {
      return sendText(res, 416, 'requested range not satisfiable', { 'Content-Range': `bytes */${size}` })
    }
    let status = 200
    let offset = 0
    let length = size
    if (range != null) {
      status = 206
      offset = range.start
      length = range.end - range.start + 1
      headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`
    }
    headers['Content-Length'] = String(length)
    res.writeHead(status, headers)
    if (req.method === 'HEAD' || length === 0) return res.end()

    const controller = new AbortController()
    res.on('close', () => controller.abort())
    try {
      for await (const chunk of readFileRange(node.getBlock, stats.cid, { offset, length, signal: controller.signal })) {
        memory.tick(chunk.length)
        if (!res.write(chunk)) await once(res, 'drain', { signal: controller.signal })
      }
      res.end()
    } catch (err) {
      // the status line is gone already: cut the connection so the client sees a short body
      if (!controller.signal.aborted) process.stderr.write(`ipfs-node gateway: ${pathname}: ${err.message}\n`)
      res.destroy()
    }
  }

  return { handle }
}
