// The repo (filesystem blockstore + datastore), the persistent peer identity
// and an offline Helia node on top of them.

import { chmod, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { unixfs } from '@helia/unixfs'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { FsBlockstore } from 'blockstore-fs'
import { FsDatastore } from 'datastore-fs'
import { createHeliaLight } from 'helia'

export class RepoLockedError extends Error {
  constructor (repo, pid) {
    super(`repo ${repo} is in use by another ipfs-node (pid ${pid})`)
    this.name = 'RepoLockedError'
  }
}

function pidAlive (pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/** Take `<repo>/repo.lock` (holds our pid); a lock left by a dead process is taken over. */
async function lockRepo (repo) {
  const lockPath = path.join(repo, 'repo.lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(lockPath, 'wx')
      await fh.writeFile(`${process.pid}\n`)
      await fh.close()
      return async () => { await rm(lockPath, { force: true }) }
    } catch (err) {
      if (err.code !== 'EEXIST') throw err
      const pid = parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10)
      if (pid !== process.pid && pidAlive(pid)) throw new RepoLockedError(repo, pid)
      await rm(lockPath, { force: true })
    }
  }
  throw new RepoLockedError(repo, '?')
}

/** Load the node's Ed25519 identity from `<repo>/identity.key`, creating it on first start. */
async function loadIdentity (repo) {
  const keyPath = path.join(repo, 'identity.key')
  let privateKey
  try {
    privateKey = privateKeyFromProtobuf(await readFile(keyPath))
  } catch (err) {
    if (err.code !== 'ENOENT') throw new Error(`cannot read ${keyPath}: ${err.message}`)
    privateKey = await generateKeyPair('Ed25519')
    const tmp = `${keyPath}.tmp`
    await writeFile(tmp, privateKeyToProtobuf(privateKey), { mode: 0o600 })
    await chmod(tmp, 0o600)
    await rename(tmp, keyPath)
  }
  const peerId = peerIdFromPrivateKey(privateKey)
  return {
    peerId: peerId.toString(),
    publicKey: Buffer.from(publicKeyToProtobuf(privateKey.publicKey)).toString('base64')
  }
}

/**
 * Open the repo and start an offline Helia node: no libp2p, no block brokers,
 * no routers, so it never touches the network.
 */
export async function openNode (repo) {
  repo = path.resolve(repo)
  await mkdir(repo, { recursive: true })
  const unlock = await lockRepo(repo)
  let blockstore, datastore, helia
  try {
    const identity = await loadIdentity(repo)
    blockstore = new FsBlockstore(path.join(repo, 'blocks'))
    datastore = new FsDatastore(path.join(repo, 'datastore'))
    await blockstore.open()
    await datastore.open()
    helia = await createHeliaLight({ blockstore, datastore, blockBrokers: [], routers: [] })
    await helia.start()
    return {
      repo,
      helia,
      fs: unixfs(helia),
      identity,
      /** The bytes of a block from the local repo (never the network). */
      async getBlock (cid, signal) {
        const chunks = []
        for await (const chunk of helia.blockstore.get(cid, { offline: true, signal })) chunks.push(chunk)
        return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
      },
      async close () {
        try { await helia.stop() } catch {}
        try { await blockstore.close() } catch {}
        try { await datastore.close() } catch {}
        await unlock()
      }
    }
  } catch (err) {
    try { await helia?.stop() } catch {}
    try { await blockstore?.close() } catch {}
    try { await datastore?.close() } catch {}
    await unlock()
    throw err
  }
}
