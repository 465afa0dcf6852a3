// Byte-range reader for UnixFS files with backpressure.
//
// ipfs-unixfs-exporter (behind @helia/unixfs `cat`) walks the DAG into an
// unbounded queue: with a slow HTTP client a whole file ends up in memory.
// This reader pulls blocks only as fast as the consumer takes bytes, with a
// small read-ahead window per DAG level.

import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import * as raw from 'multiformats/codecs/raw'

const READ_AHEAD = 4

class NotAFileError extends Error {
  constructor (message = 'not a file') {
    super(message)
    this.name = 'NotAFileError'
  }
}

class CorruptDagError extends Error {
  constructor (message) {
    super(message)
    this.name = 'CorruptDagError'
  }
}

/**
 * Yield the bytes [offset, offset + length) of the file whose root is `cid`.
 * `getBlock(cid, signal)` returns the block bytes.
 */
export async function * readFileRange (getBlock, cid, { offset = 0, length = Infinity, signal } = {}) {
  const start = BigInt(offset)
  const end = length === Infinity ? null : start + BigInt(length)
  if (end != null && end <= start) return

  const slice = (bytes, pos) => {
    // part of `bytes` (which starts at file position `pos`) inside [start, end)
    const from = start > pos ? Number(start - pos) : 0
    const to = end == null ? bytes.length : Math.min(bytes.length, Number(end - pos))
    return from < to ? bytes.subarray(from, to) : null
  }

  async function * visit (nodeCid, block, pos) {
    if (nodeCid.code === raw.code) {
      const part = slice(block, pos)
      if (part != null) yield part
      return
    }
    if (nodeCid.code !== dagPb.code) throw new NotAFileError(`unsupported codec 0x${nodeCid.code.toString(16)}`)
    const node = dagPb.decode(block)
    if (node.Data == null) throw new NotAFileError('no UnixFS data in dag-pb node')
    const fsNode = UnixFS.unmarshal(node.Data)
    if (fsNode.type !== 'file' && fsNode.type !== 'raw') throw new NotAFileError(`this dag node is a ${fsNode.type}`)
    if (fsNode.data != null && fsNode.data.length > 0) {
      const part = slice(fsNode.data, pos)
      if (part != null) yield part
      pos += BigInt(fsNode.data.length)
    }
    if (node.Links.length !== fsNode.blockSizes.length) throw new CorruptDagError('inconsistent block sizes and dag links')
    const children = []
    for (let i = 0; i < node.Links.length; i++) {
      const childStart = pos
      const childEnd = pos + BigInt(fsNode.blockSizes[i])
      pos = childEnd
      if (childEnd <= start) continue
      if (end != null && childStart >= end) break
      children.push({ cid: node.Links[i].Hash, pos: childStart })
    }
    // sliding read-ahead window over this node's children
    const pending = []
    let next = 0
    const fill = () => {
      while (next < children.length && pending.length < READ_AHEAD) {
        const child = children[next++]
        const p = getBlock(child.cid, signal)
        p.catch(() => {}) // handled when awaited
        pending.push({ child, p })
      }
    }
    fill()
    while (pending.length > 0) {
      const { child, p } = pending.shift()
      const childBlock = await p
      fill()
      yield * visit(child.cid, childBlock, child.pos)
    }
  }

  const rootBlock = await getBlock(cid, signal)
  yield * visit(cid, rootBlock, 0n)
}
