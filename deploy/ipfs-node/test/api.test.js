import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import { after, before, describe, test } from 'node:test'
import {
  MULTIPART_TYPE, addBytes, addStream, multipartBody, removeRepo, rpc, rpcJson,
  runNodeToExit, sha256, sha256OfResponse, startNode, tempRepo
} from './helpers.js'
import { kuboFileCid, rawCid } from './kubo-dag.js'

const MiB = 1024 * 1024

// CIDv0 of zero-filled files as computed by go-ipfs `ipfs add` (default
// settings); published in Solidity's test/libsolutil/IpfsHash.cpp.
const PUBLISHED_ZERO_FILES = [
  [0, 'QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH'],
  [200, 'QmSXR1N23uWzsANi8wpxMPw5dmmhqBVUAb4hUrHVLpNaMr'],
  [100000, 'QmYgKa25YqEGpQmmZtPPFMNK3kpqqneHk6nMSEUYryEX1C'],
  [262143, 'QmbNDspMkzkMFKyS3eCJGedG7GWRQHSCzJCZLjxP7wyVAx'], // largest unchunked
  [262145, 'QmbVuw4C4vcmVKqxoWtgDVobvcHrSn51qsmQmyxjk4sB2Q'], // smallest chunked
  [1310710, 'QmNg7BJo8gEMDK8yGQbHEwPtycesnE6FUULX5iVd5TAL9f'],
  [45613056, 'QmY4HSz1oVGdUzb8poVYPLsoqBZjH6LZrtgnme9wWn2Qko'], // 174 chunks: largest one-level
  [45613057, 'QmehMASWcBsX7VcEQqs6rpR5AHoBfKyBVEgmkJHjpPg8jq'], // smallest two-level
  [46661632, 'QmaTb1sT9hrSXJLmf8bxJ9NuwndiHuMLsgNLgkS2eXu3Xj']
]
const PUBLISHED_TEXT = [
  ['x', 'QmULKig5Fxrs2sC4qt9nNduucXfb92AFYQ6Hi3YRqDmrYC'],
  ['Solidity\n', 'QmSsm9M7PQRBnyiz1smizk8hZw3URfk8fSeHzeTo3oZidS'],
  ['hello world\n', 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o']
]

function expectKuboError (status, body, expectedStatus, messagePattern) {
  assert.equal(status, expectedStatus, body)
  const json = JSON.parse(body)
  assert.deepEqual(Object.keys(json).sort(), ['Code', 'Message', 'Type'])
  assert.equal(json.Type, 'error')
  assert.equal(json.Code, expectedStatus === 400 ? 1 : 0)
  if (messagePattern != null) assert.match(json.Message, messagePattern)
}

test('the test-side Kubo DAG builder reproduces published go-ipfs CIDs', () => {
  for (const [size, cid] of PUBLISHED_ZERO_FILES) {
    assert.equal(kuboFileCid(Buffer.alloc(size)).cid, cid, `zeros(${size})`)
  }
  for (const [text, cid] of PUBLISHED_TEXT) {
    assert.equal(kuboFileCid(Buffer.from(text)).cid, cid, JSON.stringify(text))
  }
  // v1 + raw leaves, single chunk: the raw block itself
  assert.equal(kuboFileCid(Buffer.from('hello world\n'), { cidVersion: 1 }).cid, rawCid(Buffer.from('hello world\n')))
})

describe('RPC API and gateway', () => {
  let repo, node
  before(async () => {
    repo = await tempRepo()
    node = await startNode(repo)
  })
  after(async () => {
    const { code } = await node.stop()
    assert.equal(code, 0)
    await removeRepo(repo)
  })

  test('id and version have Kubo shapes', async () => {
    const id = await rpcJson(node, 'id')
    assert.deepEqual(Object.keys(id).sort(), ['Addresses', 'AgentVersion', 'ID', 'Protocols', 'PublicKey'])
    assert.match(id.ID, /^12D3KooW[1-9A-HJ-NP-Za-km-z]+$/)
    assert.equal(typeof id.PublicKey, 'string')
    assert.equal(Buffer.from(id.PublicKey, 'base64').length, 36) // protobuf Ed25519 public key
    assert.deepEqual(id.Addresses, [])
    assert.deepEqual(id.Protocols, [])
    assert.match(id.AgentVersion, /^chainchat-helia\//)

    const v = await rpcJson(node, 'version')
    assert.deepEqual(Object.keys(v).sort(), ['Commit', 'Golang', 'Repo', 'System', 'Version'])
    for (const k of Object.keys(v)) assert.equal(typeof v[k], 'string')
    assert.match(v.Version, /^\d+\.\d+\.\d+/)
  })

  test('known CIDs: empty file and "hello world\\n" (CIDv0), raw CIDv1 single chunk', async () => {
    let r = await addBytes(node, Buffer.alloc(0), {}, 'empty.txt')
    assert.deepEqual(r, { Name: 'empty.txt', Hash: 'QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH', Size: '6' })
    r = await addBytes(node, Buffer.from('hello world\n'), {}, 'hello.txt')
    assert.deepEqual(r, { Name: 'hello.txt', Hash: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o', Size: '20' })
    // explicit cid-version=0 gives the same
    r = await addBytes(node, Buffer.from('hello world\n'), { 'cid-version': 0 })
    assert.equal(r.Hash, 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o')

    for (const bytes of [Buffer.from('hello world\n'), randomBytes(262144), Buffer.alloc(0)]) {
      r = await addBytes(node, bytes, { 'cid-version': 1 })
      assert.equal(r.Hash, rawCid(bytes))
      assert.match(r.Hash, /^bafkrei/)
      assert.equal(r.Size, String(bytes.length))
    }
    for (const [text, cid] of PUBLISHED_TEXT) {
      assert.equal((await addBytes(node, Buffer.from(text))).Hash, cid)
    }
  })

  test('add: several file parts give one NDJSON line each; a part without filename is named by its CID', async () => {
    const b = 'XyZb0undary'
    const body = Buffer.concat([
      Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="a%20b.txt"\r\nContent-Type: application/octet-stream\r\n\r\nhello world\n\r\n`),
      Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="dir/x.txt"\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n`),
      Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"\r\n\r\n`),
      Buffer.from([0xff, 0x00, 0xc3, 0x28]),
      Buffer.from(`\r\n--${b}--\r\n`)
    ])
    const res = await rpc(node, 'add', { pin: false }, { body, headers: { 'Content-Type': `multipart/form-data; boundary=${b}` } })
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'application/json')
    const lines = (await res.text()).trim().split('\n').map(l => JSON.parse(l))
    const binary = kuboFileCid(Buffer.from([0xff, 0x00, 0xc3, 0x28]))
    assert.deepEqual(lines, [
      { Name: 'a b.txt', Hash: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o', Size: '20' },
      { Name: 'dir/x.txt', Hash: 'QmULKig5Fxrs2sC4qt9nNduucXfb92AFYQ6Hi3YRqDmrYC', Size: String(kuboFileCid(Buffer.from('x')).size) },
      { Name: binary.cid, Hash: binary.cid, Size: String(binary.size) }
    ])
  })

  test('published go-ipfs CIDs of zero-filled files up to a two-level tree', async () => {
    for (const [size, cid] of PUBLISHED_ZERO_FILES) {
      const r = await addBytes(node, Buffer.alloc(size), { pin: false })
      assert.equal(r.Hash, cid, `zeros(${size})`)
      assert.equal(r.Size, String(kuboFileCid(Buffer.alloc(size)).size))
    }
  })

  test('5 MiB random: add/cat round trip with Kubo CIDs (v0, v1 + raw leaves)', async () => {
    const bytes = randomBytes(5 * MiB)
    for (const params of [{}, { 'cid-version': 1 }, { 'cid-version': 1, 'raw-leaves': false }, { 'raw-leaves': true }]) {
      const expected = kuboFileCid(bytes, {
        cidVersion: params['cid-version'] ?? 0,
        rawLeaves: params['raw-leaves'] ?? params['cid-version'] === 1
      })
      const r = await addBytes(node, bytes, params, 'big.bin')
      assert.equal(r.Hash, expected.cid, JSON.stringify(params))
      assert.equal(r.Size, String(expected.size))
      assert.equal(r.Name, 'big.bin')
      if ((params['cid-version'] ?? 0) === 0) assert.match(r.Hash, /^Qm/)
      else assert.match(r.Hash, /^bafybei/)

      const res = await rpc(node, 'cat', { arg: r.Hash })
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('x-stream-output'), '1')
      assert.equal(res.headers.get('x-content-length'), String(bytes.length))
      const got = await sha256OfResponse(res)
      assert.equal(got.length, bytes.length)
      assert.equal(got.sha256, sha256(bytes))
    }
  })

  test('multi-level trees with a small size-N chunker match the Kubo layout', async () => {
    const bytes = randomBytes(400 * 1024) // 400 chunks of 1 KiB: three levels at 174 links
    for (const cidVersion of [0, 1]) {
      const expected = kuboFileCid(bytes, { cidVersion, chunkSize: 1024 })
      const r = await addBytes(node, bytes, { 'cid-version': cidVersion, chunker: 'size-1024', pin: false })
      assert.equal(r.Hash, expected.cid)
      assert.equal(r.Size, String(expected.size))
      const res = await rpc(node, 'cat', { arg: r.Hash, offset: 1000, length: 300000 })
      const got = Buffer.from(await res.arrayBuffer())
      assert.ok(got.equals(bytes.subarray(1000, 301000)))
    }
  })

  test('cat offset/length, /ipfs/ paths and limits', async () => {
    const bytes = randomBytes(3 * MiB + 17)
    const { Hash } = await addBytes(node, bytes)
    const cat = async (params) => {
      const res = await rpc(node, 'cat', { arg: Hash, ...params })
      assert.equal(res.status, 200)
      return Buffer.from(await res.arrayBuffer())
    }
    assert.ok((await cat({ offset: 262140, length: 10 })).equals(bytes.subarray(262140, 262150)))
    assert.ok((await cat({ offset: MiB })).equals(bytes.subarray(MiB)))
    assert.ok((await cat({ length: 5 })).equals(bytes.subarray(0, 5)))
    assert.equal((await cat({ length: 0 })).length, 0)
    assert.equal((await cat({ offset: bytes.length })).length, 0)
    assert.equal((await cat({ offset: bytes.length + 100 })).length, 0)
    assert.ok((await cat({ offset: bytes.length - 3, length: 100 })).equals(bytes.subarray(-3)))
    const viaPath = await rpc(node, 'cat', { arg: `/ipfs/${Hash}`, length: 4 })
    assert.ok(Buffer.from(await viaPath.arrayBuffer()).equals(bytes.subarray(0, 4)))

    let res = await rpc(node, 'cat', { arg: Hash, offset: -1 })
    expectKuboError(res.status, await res.text(), 500, /negative offset/)
    res = await rpc(node, 'cat', { arg: Hash, length: -1 })
    expectKuboError(res.status, await res.text(), 500, /negative length/)
    res = await rpc(node, 'cat', { arg: Hash, offset: 'abc' })
    expectKuboError(res.status, await res.text(), 400, /Could not convert/)
  })

  test('pin add / rm / ls shapes', async () => {
    const bytes = randomBytes(600 * 1024) // 3 chunks
    const { Hash } = await addBytes(node, bytes, { pin: false })
    const notPinned = await rpc(node, 'pin/ls', { arg: Hash })
    expectKuboError(notPinned.status, await notPinned.text(), 500, /is not pinned/)

    assert.deepEqual(await rpcJson(node, 'pin/add', { arg: Hash }), { Pins: [Hash] })
    // idempotent, like Kubo
    assert.deepEqual(await rpcJson(node, 'pin/add', { arg: Hash }), { Pins: [Hash] })
    assert.deepEqual(await rpcJson(node, 'pin/ls', { arg: Hash }), { Keys: { [Hash]: { Type: 'recursive' } } })
    assert.deepEqual(await rpcJson(node, 'pin/ls', { arg: Hash, type: 'recursive' }), { Keys: { [Hash]: { Type: 'recursive' } } })

    const recursive = await rpcJson(node, 'pin/ls', { type: 'recursive' })
    assert.deepEqual(Object.keys(recursive), ['Keys'])
    assert.deepEqual(recursive.Keys[Hash], { Type: 'recursive' })
    for (const v of Object.values(recursive.Keys)) assert.deepEqual(v, { Type: 'recursive' })

    // the leaves show up as indirect pins in the default listing
    const all = await rpcJson(node, 'pin/ls')
    assert.deepEqual(all.Keys[Hash], { Type: 'recursive' })
    const indirect = Object.entries(all.Keys).filter(([, v]) => v.Type === 'indirect')
    assert.ok(indirect.length >= 3)
    const leaf = indirect.find(([cid]) => !(cid in recursive.Keys))[0]
    const leafInfo = await rpcJson(node, 'pin/ls', { arg: leaf })
    assert.match(leafInfo.Keys[leaf].Type, /^indirect through /)

    const streamed = await rpc(node, 'pin/ls', { type: 'recursive', stream: true })
    const lines = (await streamed.text()).trim().split('\n').map(l => JSON.parse(l))
    assert.ok(lines.some(l => l.Cid === Hash && l.Type === 'recursive'))

    assert.deepEqual(await rpcJson(node, 'pin/rm', { arg: Hash }), { Pins: [Hash] })
    const again = await rpc(node, 'pin/rm', { arg: Hash })
    expectKuboError(again.status, await again.text(), 500, /not pinned or pinned indirectly/)
    assert.equal((await rpcJson(node, 'pin/ls', { type: 'recursive' })).Keys[Hash], undefined)

    // a CIDv1 pin is listed as CIDv1
    const v1 = await addBytes(node, bytes, { 'cid-version': 1 })
    assert.deepEqual((await rpcJson(node, 'pin/ls', { arg: v1.Hash })).Keys, { [v1.Hash]: { Type: 'recursive' } })
    assert.deepEqual(await rpcJson(node, 'pin/rm', { arg: v1.Hash }), { Pins: [v1.Hash] })

    // add with pin=false pins nothing
    const unpinned = await addBytes(node, randomBytes(1000), { pin: false })
    assert.equal((await rpcJson(node, 'pin/ls')).Keys[unpinned.Hash], undefined)

  })

  test('errors look like Kubo', async () => {
    let res = await rpc(node, 'cat', { arg: 'not-a-cid' })
    expectKuboError(res.status, await res.text(), 500, /^invalid path "not-a-cid"/)
    res = await rpc(node, 'cat', { arg: 'Qmfoo' })
    expectKuboError(res.status, await res.text(), 500, /invalid cid/)
    res = await rpc(node, 'cat')
    expectKuboError(res.status, await res.text(), 400, /^argument "ipfs-path" is required$/)
    res = await rpc(node, 'pin/add')
    expectKuboError(res.status, await res.text(), 400, /^argument "ipfs-path" is required$/)
    res = await rpc(node, 'pin/rm')
    expectKuboError(res.status, await res.text(), 400, /^argument "ipfs-path" is required$/)
    // a valid CID that this repo does not have
    const absent = 'QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB'
    res = await rpc(node, 'cat', { arg: absent })
    expectKuboError(res.status, await res.text(), 500, /not found locally/)
    res = await rpc(node, 'pin/add', { arg: absent })
    expectKuboError(res.status, await res.text(), 500, /not found locally/)
    res = await rpc(node, 'pin/ls', { type: 'bogus' })
    expectKuboError(res.status, await res.text(), 500, /invalid type/)

    // add: unsupported chunker / options, missing file part, wrong body
    for (const params of [{ chunker: 'rabin' }, { chunker: 'buzhash' }, { chunker: 'whatever' }, { 'cid-version': 2 }, { hash: 'blake2b-256' }, { trickle: true }]) {
      const r = await addStream(node, [Buffer.from('x')], params)
      expectKuboError(r.status, r.text, 500)
    }
    const r = await addStream(node, [Buffer.from('x')], { pin: 'maybe' })
    expectKuboError(r.status, r.text, 400, /Could not convert value "maybe" to type "bool"/)
    res = await rpc(node, 'add', {}, { body: 'plain', headers: { 'Content-Type': 'text/plain' } })
    expectKuboError(res.status, await res.text(), 400, /file argument/)
    res = await rpc(node, 'add', {}, { body: `--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n`, headers: { 'Content-Type': 'multipart/form-data; boundary=b' } })
    assert.ok([400, 500].includes(res.status))
    assert.equal(JSON.parse(await res.text()).Type, 'error')

    // GET on an RPC endpoint → 405, unknown endpoint → 404
    for (const cmd of ['id', 'add', 'cat?arg=QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o', 'pin/ls']) {
      const get = await fetch(`${node.api}/api/v0/${cmd}`)
      assert.equal(get.status, 405)
      await get.text()
    }
    const unknown = await rpc(node, 'no/such/command')
    assert.equal(unknown.status, 404)
    await unknown.text()
    // cross-origin browser request is refused
    const cross = await rpc(node, 'id', {}, { headers: { Origin: 'http://evil.example' } })
    assert.equal(cross.status, 403)
    await cross.text()
  })

  test('gateway: GET, HEAD, Range, ETag', async () => {
    const bytes = randomBytes(MiB + 12345)
    const { Hash } = await addBytes(node, bytes)
    const url = `${node.gateway}/ipfs/${Hash}`

    let res = await fetch(url)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-length'), String(bytes.length))
    assert.equal(res.headers.get('etag'), `"${Hash}"`)
    assert.equal(res.headers.get('accept-ranges'), 'bytes')
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes))

    res = await fetch(url, { method: 'HEAD' })
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-length'), String(bytes.length))

    res = await fetch(url, { headers: { Range: 'bytes=262100-262199' } })
    assert.equal(res.status, 206)
    assert.equal(res.headers.get('content-range'), `bytes 262100-262199/${bytes.length}`)
    assert.equal(res.headers.get('content-length'), '100')
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(262100, 262200)))

    res = await fetch(url, { headers: { Range: 'bytes=-10' } })
    assert.equal(res.status, 206)
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(-10)))

    res = await fetch(url, { headers: { Range: `bytes=${bytes.length - 5}-` } })
    assert.equal(res.status, 206)
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(-5)))

    res = await fetch(url, { headers: { Range: `bytes=${bytes.length}-` } })
    assert.equal(res.status, 416)
    assert.equal(res.headers.get('content-range'), `bytes */${bytes.length}`)
    await res.text()

    res = await fetch(url, { headers: { 'If-None-Match': `"${Hash}"` } })
    assert.equal(res.status, 304)
    await res.text()

    res = await fetch(`${node.gateway}/ipfs/QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB`)
    assert.equal(res.status, 404)
    await res.text()
    res = await fetch(`${node.gateway}/ipfs/not-a-cid`)
    assert.equal(res.status, 400)
    await res.text()
    res = await fetch(url, { method: 'POST' })
    assert.equal(res.status, 405)
    await res.text()
    // the RPC API is not served on the gateway port
    res = await fetch(`${node.gateway}/api/v0/id`, { method: 'POST' })
    assert.equal(res.status, 404)
    await res.text()
  })
})

describe('aborted uploads, restart, port conflicts', () => {
  test('a client that disconnects mid-upload leaves no pin; repo/gc removes its blocks', async () => {
    const repo = await tempRepo()
    const node = await startNode(repo)
    try {
      const keep = await addBytes(node, Buffer.from('keep me\n'))
      const before = await rpcJson(node, 'pin/ls', { type: 'recursive' })

      await new Promise((resolve) => {
        const url = new URL(`${node.api}/api/v0/add`)
        const req = http.request(url, { method: 'POST', headers: { 'Content-Type': MULTIPART_TYPE } })
        req.on('error', () => resolve())
        req.on('response', (res) => { res.resume(); resolve() })
        const body = multipartBody([])
        // send the head of the form and 4 MiB of content, then vanish
        body.next().then(({ value }) => {
          req.write(value)
          req.write(randomBytes(4 * MiB), () => {
            setTimeout(() => {
              req.destroy()
              resolve()
            }, 500)
          })
        })
      })
      await new Promise(resolve => setTimeout(resolve, 500))

      const afterAbort = await rpcJson(node, 'pin/ls', { type: 'recursive' })
      assert.deepEqual(afterAbort, before)
      // the node is still healthy
      assert.equal((await rpcJson(node, 'id')).ID.length > 0, true)

      const gc = await rpc(node, 'repo/gc')
      assert.equal(gc.status, 200)
      const removed = (await gc.text()).trim().split('\n').filter(Boolean).map(l => JSON.parse(l))
      assert.ok(removed.length >= 1, 'the partial upload left blocks to collect')
      for (const line of removed) assert.equal(typeof line.Key['/'], 'string')
      // pinned data survives gc
      const cat = await rpc(node, 'cat', { arg: keep.Hash })
      assert.equal(await cat.text(), 'keep me\n')
      const gc2 = await rpc(node, 'repo/gc')
      assert.equal((await gc2.text()).trim(), '')
    } finally {
      await node.stop()
      await removeRepo(repo)
    }
  })

  test('restart keeps data, pins and peer id; SIGTERM exits 0', async () => {
    const repo = await tempRepo()
    const bytes = randomBytes(2 * MiB)
    let node = await startNode(repo)
    let hash, id, unpinned
    try {
      hash = (await addBytes(node, bytes)).Hash
      unpinned = (await addBytes(node, randomBytes(300 * 1024), { pin: false })).Hash
      id = (await rpcJson(node, 'id')).ID
    } finally {
      const { code } = await node.stop('SIGTERM')
      assert.equal(code, 0)
    }
    node = await startNode(repo)
    try {
      assert.equal((await rpcJson(node, 'id')).ID, id)
      assert.deepEqual((await rpcJson(node, 'pin/ls', { arg: hash })).Keys, { [hash]: { Type: 'recursive' } })
      const res = await rpc(node, 'cat', { arg: hash })
      assert.equal((await sha256OfResponse(res)).sha256, sha256(bytes))
      // gc after restart drops only the unpinned file
      await (await rpc(node, 'repo/gc')).text()
      const gone = await rpc(node, 'cat', { arg: unpinned })
      expectKuboError(gone.status, await gone.text(), 500, /not found locally/)
      const still = await rpc(node, 'cat', { arg: hash })
      assert.equal((await sha256OfResponse(still)).sha256, sha256(bytes))
    } finally {
      const { code } = await node.stop('SIGINT')
      assert.equal(code, 0)
      await removeRepo(repo)
    }
  })

  test('a port already in use: one clear line and exit 1', async () => {
    const blocker = net.createServer()
    await new Promise(resolve => blocker.listen(0, '127.0.0.1', resolve))
    const port = blocker.address().port
    const repo = await tempRepo()
    try {
      const api = await runNodeToExit(['--repo', repo, '--api-port', String(port), '--gateway-port', '0'])
      assert.equal(api.code, 1)
      assert.equal(api.stderr, `ipfs-node: port ${port} already in use\n`)
      assert.equal(api.stdout, '')
      const gw = await runNodeToExit(['--repo', repo, '--api-port', '0', '--gateway-port', String(port)])
      assert.equal(gw.code, 1)
      assert.equal(gw.stderr, `ipfs-node: port ${port} already in use\n`)
    } finally {
      blocker.close()
      await removeRepo(repo)
    }
  })

  test('a second node on the same repo is refused', async () => {
    const repo = await tempRepo()
    const node = await startNode(repo)
    try {
      const second = await runNodeToExit(['--repo', repo, '--api-port', '0', '--gateway-port', '0'])
      assert.equal(second.code, 1)
      assert.match(second.stderr, /^ipfs-node: repo .* is in use by another ipfs-node \(pid \d+\)\n$/)
    } finally {
      await node.stop()
      await removeRepo(repo)
    }
  })
})
