#!/usr/bin/env node
// ChainChat's local IPFS node: Helia + Kubo-compatible RPC API + path gateway.
//
//   node src/server.js [--repo DIR] [--api-port N] [--gateway-port N] [--host H]
//
// Environment (flags win): IPFS_NODE_REPO, IPFS_NODE_API_PORT,
// IPFS_NODE_GATEWAY_PORT, IPFS_NODE_HOST.

import { readFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { createApi } from './api.js'
import { createGateway } from './gateway.js'
import { RepoLockedError, openNode } from './node.js'
import { MemoryGuard } from './util.js'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))

const USAGE = `usage: node src/server.js [--repo DIR] [--api-port N] [--gateway-port N] [--host HOST]
  --repo DIR          blockstore, datastore, peer key (default $IPFS_NODE_REPO or ./var/ipfs-repo)
  --api-port N        Kubo RPC API port (default $IPFS_NODE_API_PORT or 5001; 0 = any free port)
  --gateway-port N    path gateway port (default $IPFS_NODE_GATEWAY_PORT or 8081; 0 = any free port)
  --host HOST         listen address for both (default $IPFS_NODE_HOST or 127.0.0.1)
`

function fail (message) {
  process.stderr.write(`ipfs-node: ${message}\n`)
  process.exit(1)
}

function parsePort (value, name) {
  if (!/^\d+$/.test(String(value)) || Number(value) > 65535) fail(`invalid ${name}: ${value}`)
  return Number(value)
}

function parseCli () {
  let values
  try {
    ({ values } = parseArgs({
      options: {
        repo: { type: 'string' },
        'api-port': { type: 'string' },
        'gateway-port': { type: 'string' },
        host: { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true
    }))
  } catch (err) {
    process.stderr.write(USAGE)
    fail(err.message)
  }
  if (values.help) {
    process.stdout.write(USAGE)
    process.exit(0)
  }
  const env = process.env
  return {
    repo: path.resolve(values.repo ?? env.IPFS_NODE_REPO ?? 'var/ipfs-repo'),
    apiPort: parsePort(values['api-port'] ?? env.IPFS_NODE_API_PORT ?? 5001, 'api port'),
    gatewayPort: parsePort(values['gateway-port'] ?? env.IPFS_NODE_GATEWAY_PORT ?? 8081, 'gateway port'),
    host: values.host ?? env.IPFS_NODE_HOST ?? '127.0.0.1'
  }
}

function listen (server, port, host) {
  return new Promise((resolve, reject) => {
    const onError = (err) => {
      server.off('listening', onListening)
      reject(err)
    }
    const onListening = () => {
      server.off('error', onError)
      resolve(server.address().port)
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(port, host)
  })
}

function urlFor (host, port) {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
}

async function main () {
  const config = parseCli()
  let node
  try {
    node = await openNode(config.repo)
  } catch (err) {
    if (err instanceof RepoLockedError) fail(err.message)
    fail(`cannot open repo ${config.repo}: ${err.message}`)
  }

  let apiOrigins = []
  const memory = new MemoryGuard()
  const api = createApi({ node, memory, version: pkg.version, heliaVersion: node.helia.info.version, origins: () => apiOrigins })
  const gateway = createGateway({ node, memory })
  const onRequest = (handler) => (req, res) => {
    handler(req, res).catch((err) => {
      process.stderr.write(`ipfs-node: ${err?.stack ?? err}\n`)
      if (!res.headersSent) {
        res.writeHead(500)
        res.end()
      } else {
        res.destroy()
      }
    })
  }
  const apiServer = http.createServer({ requestTimeout: 0 }, onRequest(api.handle))
  const gatewayServer = http.createServer(onRequest(gateway.handle))
  for (const server of [apiServer, gatewayServer]) {
    // large uploads and downloads may take long: no limit on the whole request (requestTimeout 0)
    server.headersTimeout = 60_000
    server.keepAliveTimeout = 5_000
    // a client that sends or reads nothing for this long is cut off (an unfinished upload is never pinned)
    server.timeout = 120_000
  }

  let apiPort, gatewayPort
  for (const [server, port, name] of [[apiServer, config.apiPort, 'api'], [gatewayServer, config.gatewayPort, 'gateway']]) {
    try {
      const bound = await listen(server, port, config.host)
      if (name === 'api') apiPort = bound
      else gatewayPort = bound
    } catch (err) {
      apiServer.close()
      gatewayServer.close()
      await node.close()
      if (err.code === 'EADDRINUSE') fail(`port ${port} already in use`)
      fail(`cannot listen on ${config.host}:${port}: ${err.code ?? err.message}`)
    }
  }
  const apiUrl = urlFor(config.host, apiPort)
  const gatewayUrl = urlFor(config.host, gatewayPort)
  apiOrigins = [apiUrl, urlFor('localhost', apiPort), urlFor('127.0.0.1', apiPort)]

  let stopping = false
  const shutdown = async (signal) => {
    if (stopping) return
    stopping = true
    process.stderr.write(`ipfs-node: ${signal} received, shutting down\n`)
    const force = setTimeout(() => {
      process.stderr.write('ipfs-node: shutdown timed out\n')
      process.exit(1)
    }, 10_000)
    force.unref()
    const closed = Promise.all([apiServer, gatewayServer].map(s => new Promise(resolve => s.close(resolve))))
    apiServer.closeIdleConnections()
    gatewayServer.closeIdleConnections()
    // give in-flight requests a moment, then cut what is left (unfinished uploads are never pinned)
    await Promise.race([closed, new Promise(resolve => setTimeout(resolve, 2_000).unref())])
    apiServer.closeAllConnections()
    gatewayServer.closeAllConnections()
    await closed
    const deadline = Date.now() + 3_000
    while (api.gate.active > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
    await node.close()
    process.exit(0)
  }
  process.on('SIGTERM', () => { shutdown('SIGTERM') })
  process.on('SIGINT', () => { shutdown('SIGINT') })

  process.stdout.write(`ipfs-node ready api=${apiUrl} gateway=${gatewayUrl}\n`)
}

main().catch((err) => {
  process.stderr.write(`ipfs-node: ${err?.stack ?? err}\n`)
  process.exit(1)
})
