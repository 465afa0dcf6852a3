// An independent re-implementation of Kubo's `ipfs add` DAG for files
// (go-unixfs balanced builder), used only by the tests to compute expected
// CIDs. It hand-encodes the dag-pb and UnixFS protobufs and hashes them with
// node:crypto; multiformats is used only to print the CID strings.
//
// Kubo's algorithm (balanced layout):
//   root = leaf(chunk 0)
//   for depth = 1 while chunks remain:
//     newRoot = internal node with child `root`; fill(newRoot, depth); root = newRoot
//   fill(node, depth): while node has < maxLinks children and chunks remain:
//     add (depth == 1 ? leaf(next chunk) : fill(new internal node, depth - 1))
// An empty file is a single empty leaf.

import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'

const DAG_PB = 0x70
const RAW = 0x55
const SHA2_256 = 0x12
const UNIXFS_FILE = 2

function varint (n) {
  const out = []
  let v = BigInt(n)
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n))
    v >>= 7n
  }
  out.push(Number(v))
  return Buffer.from(out)
}

const key = (field, wire) => varint((field << 3) | wire)
const lenField = (field, bytes) => Buffer.concat([key(field, 2), varint(bytes.length), bytes])
const intField = (field, n) => Buffer.concat([key(field, 0), varint(n)])

function unixfsFile ({ data, filesize, blocksizes = [] }) {
  const parts = [intField(1, UNIXFS_FILE)]
  if (data != null && data.length > 0) parts.push(lenField(2, data))
  parts.push(intField(3, filesize))
  for (const b of blocksizes) parts.push(intField(4, b))
  return Buffer.concat(parts)
}

function pbNode ({ data, links = [] }) {
  const parts = []
  for (const l of links) {
    // PBLink: Hash = 1, Name = 2 (Kubo writes the empty name), Tsize = 3
    const link = Buffer.concat([lenField(1, l.cid.bytes), lenField(2, Buffer.alloc(0)), intField(3, l.tsize)])
    parts.push(lenField(2, link))
  }
  parts.push(lenField(1, data))
  return Buffer.concat(parts)
}

function cidOf (bytes, codec, version) {
  const digest = createDigest(SHA2_256, createHash('sha256').update(bytes).digest())
  if (codec === DAG_PB && version === 0) return CID.createV0(digest)
  return CID.createV1(codec, digest)
}

/**
 * Expected Kubo root for `bytes` added with the given options.
 * Returns { cid: string, size: cumulative dag size (number), blocks: number }.
 */
export function kuboFileCid (bytes, { cidVersion = 0, rawLeaves = cidVersion === 1, chunkSize = 262144, maxLinks = 174 } = {}) {
  const chunks = []
  for (let off = 0; off < bytes.length; off += chunkSize) chunks.push(bytes.subarray(off, off + chunkSize))
  if (chunks.length === 0) chunks.push(Buffer.alloc(0))
  let next = 0
  let blocks = 0

  const leaf = () => {
    const data = chunks[next++]
    blocks++
    if (rawLeaves) return { cid: cidOf(data, RAW, 1), tsize: data.length, filesize: data.length }
    const block = pbNode({ data: unixfsFile({ data, filesize: data.length }) })
    return { cid: cidOf(block, DAG_PB, cidVersion), tsize: block.length, filesize: data.length }
  }
  const finish = (children) => {
    const filesize = children.reduce((n, c) => n + c.filesize, 0)
    const block = pbNode({
      data: unixfsFile({ filesize, blocksizes: children.map(c => c.filesize) }),
      links: children
    })
    blocks++
    return {
      cid: cidOf(block, DAG_PB, cidVersion),
      tsize: block.length + children.reduce((n, c) => n + c.tsize, 0),
      filesize
    }
  }
  const fill = (children, depth) => {
    while (children.length < maxLinks && next < chunks.length) {
      children.push(depth === 1 ? leaf() : fill([], depth - 1))
    }
    return finish(children)
  }

  let root = leaf()
  for (let depth = 1; next < chunks.length; depth++) root = fill([root], depth)
  return { cid: root.cid.toString(), size: root.tsize, blocks }
}

/** CIDv1 raw of sha256(bytes): what Kubo gives a single-chunk file with raw leaves. */
export function rawCid (bytes) {
  return cidOf(bytes, RAW, 1).toString()
}
