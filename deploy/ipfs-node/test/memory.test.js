// Streaming check: a 100 MiB upload and download must not grow the node's RSS
// by anything near the file size.

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { addBytes, addStream, removeRepo, rpc, rssOf, sha256OfResponse, startNode, tempRepo, randomStream } from './helpers.js'

const MiB = 1024 * 1024
const SIZE = 100 * MiB
const LIMIT = 100 * MiB

test('100 MiB upload and download stream with flat RSS', { timeout: 300_000 }, async () => {
  const repo = await tempRepo()
  const node = await startNode(repo)
  let peak = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      try { peak = Math.max(peak, await rssOf(node.pid)) } catch {}
      await new Promise(resolve => setTimeout(resolve, 25))
    }
  })()
  try {
    // warm up the code paths once so that baseline includes loaded modules
    await addBytes(node, Buffer.alloc(3 * MiB, 7))
    await (await rpc(node, 'cat', { arg: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o' })).text()
    const baseline = await rssOf(node.pid)
    peak = baseline

    const hash = createHash('sha256')
    const r = await addStream(node, randomStream(SIZE, 256 * 1024, hash), {}, 'big.bin')
    assert.equal(r.status, 200, r.text)
    const { Hash, Size } = r.lines[0]
    assert.match(Hash, /^Qm/)
    assert.ok(Number(Size) > SIZE)
    const expected = hash.digest('hex')
    const afterUpload = peak

    const viaCat = await sha256OfResponse(await rpc(node, 'cat', { arg: Hash }))
    assert.equal(viaCat.length, SIZE)
    assert.equal(viaCat.sha256, expected)
    const viaGateway = await sha256OfResponse(await fetch(`${node.gateway}/ipfs/${Hash}`))
    assert.equal(viaGateway.sha256, expected)

    // a client that stops reading: the node must not read ahead the whole file
    const slow = await fetch(`${node.gateway}/ipfs/${Hash}`)
    const reader = slow.body.getReader()
    await reader.read()
    await new Promise(resolve => setTimeout(resolve, 1500))
    const stalled = await rssOf(node.pid)
    await reader.cancel()

    const growth = peak - baseline
    console.log(`rss while a reader stalls: ${((stalled - baseline) / MiB).toFixed(1)} MiB over baseline`)
    assert.ok(stalled - baseline < LIMIT)
    console.log(`rss baseline ${(baseline / MiB).toFixed(1)} MiB, peak during upload ${((afterUpload - baseline) / MiB).toFixed(1)} MiB over, overall peak growth ${(growth / MiB).toFixed(1)} MiB`)
    assert.ok(growth < LIMIT, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`)
  } finally {
    sampling = false
    await sampler
    await node.stop()
    await removeRepo(repo)
  }
})
