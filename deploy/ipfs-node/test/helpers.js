// Test helpers: start the node on free ports in a temp repo, talk to it over HTTP.

import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const SERVER = fileURLToPath(new URL('../src/server.js', import.meta.url))

export async function tempRepo () {
  return mkdtemp(path.join(tmpdir(), 'ipfs-node-test-'))
}

export async function removeRepo (dir) {
  await rm(dir, { recursive: true, force: true })
}

/** Start `node src/server.js` (the same Node binary as the tests) and wait for the ready line. */
export async function startNode (repo, { apiPort = 0, gatewayPort = 0, extraArgs = [] } = {}) {
  const proc = spawn(process.execPath, [SERVER, '--repo', repo, '--api-port', String(apiPort), '--gateway-port', String(gatewayPort), ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  proc.stderr.setEncoding('utf8')
  proc.stderr.on('data', (d) => { stderr += d })
  proc.stdout.setEncoding('utf8')
  const exited = new Promise(resolve => proc.once('exit', (code, signal) => resolve({ code, signal })))
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not become ready: ${stderr}`)), 20_000)
    proc.stdout.on('data', (d) => {
      stdout += d
      const m = /^ipfs-node ready api=(\S+) gateway=(\S+)$/m.exec(stdout)
      if (m != null) {
        clearTimeout(timer)
        resolve({ api: m[1], gateway: m[2] })
      }
    })
    exited.then(({ code }) => {
      clearTimeout(timer)
      reject(new Error(`node exited with ${code} before ready: ${stderr}`))
    })
  })
  return {
    proc,
    pid: proc.pid,
    api: ready.api,
    gateway: ready.gateway,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async stop (signal = 'SIGTERM') {
      if (proc.exitCode == null && proc.signalCode == null) proc.kill(signal)
      return exited
    }
  }
}

/** Run the server expecting it to exit by itself (e.g. on a port conflict). */
export function runNodeToExit (args) {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [SERVER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d) => { stdout += d })
    proc.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000)
    proc.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

export async function rpc (node, command, params = {}, init = {}) {
  const url = new URL(`${node.api}/api/v0/${command}`)
  for (const [k, v] of Object.entries(params)) {
    for (const item of [v].flat()) url.searchParams.append(k, String(item))
  }
  return fetch(url, { method: 'POST', ...init })
}

export async function rpcJson (node, command, params = {}) {
  const res = await rpc(node, command, params)
  const text = await res.text()
  if (res.status !== 200) throw new Error(`${command} -> ${res.status}: ${text}`)
  return JSON.parse(text)
}

const BOUNDARY = '----chainchat-test-boundary-7d3f9a'

/**
 * multipart/form-data body with one file part whose content comes from an
 * (async) iterable of Uint8Array, so nothing is buffered.
 */
export async function * multipartBody (content, filename = 'file.bin') {
  const enc = new TextEncoder()
  yield enc.encode(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`)
  for await (const chunk of content) yield chunk
  yield enc.encode(`\r\n--${BOUNDARY}--\r\n`)
}

export const MULTIPART_TYPE = `multipart/form-data; boundary=${BOUNDARY}`

/** POST /api/v0/add streaming `content`; returns { status, lines } where lines are the parsed NDJSON. */
export async function addStream (node, content, params = {}, filename = 'file.bin') {
  const res = await rpc(node, 'add', params, {
    body: multipartBody(content, filename),
    duplex: 'half',
    headers: { 'Content-Type': MULTIPART_TYPE }
  })
  const text = await res.text()
  if (res.status !== 200) return { status: res.status, text, lines: [] }
  return { status: res.status, text, lines: text.trim().split('\n').map(l => JSON.parse(l)) }
}

export async function addBytes (node, bytes, params = {}, filename = 'file.bin') {
  const r = await addStream(node, [bytes], params, filename)
  if (r.status !== 200) throw new Error(`add -> ${r.status}: ${r.text}`)
  return r.lines[r.lines.length - 1]
}

/** Deterministic-size random content generated on the fly: yields `total` bytes in `chunk` pieces. */
export function * randomStream (total, chunk = 1024 * 1024, hash = null) {
  let left = total
  while (left > 0) {
    const n = Math.min(chunk, left)
    const buf = randomBytes(n)
    hash?.update(buf)
    left -= n
    yield buf
  }
}

export async function sha256OfResponse (res) {
  const h = createHash('sha256')
  let n = 0
  for await (const chunk of res.body) {
    h.update(chunk)
    n += chunk.length
  }
  return { sha256: h.digest('hex'), length: n }
}

export function sha256 (bytes) {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Resident set size of a process in bytes (Linux /proc). */
export async function rssOf (pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  return Number(m[1]) * 1024
}
