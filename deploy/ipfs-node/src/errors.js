// Kubo-style command errors.
//
// Kubo (go-ipfs-cmds) answers a failed command with a JSON body
// {"Message": "...", "Code": N, "Type": "error"}. Code 0 (ErrNormal) is sent
// with HTTP 500; Code 1 (ErrClient: bad or missing arguments/options) with
// HTTP 400.

export const ERR_NORMAL = 0
export const ERR_CLIENT = 1

export class KuboError extends Error {
  constructor (message, { code = ERR_NORMAL, status } = {}) {
    super(message)
    this.name = 'KuboError'
    this.kuboCode = code
    this.status = status ?? (code === ERR_CLIENT ? 400 : 500)
  }
}

export function clientError (message) {
  return new KuboError(message, { code: ERR_CLIENT })
}

export function requiredArg (argName) {
  return clientError(`argument "${argName}" is required`)
}

/** Translate errors thrown by Helia / unixfs into Kubo's wording. */
export function toKuboError (err, { cid } = {}) {
  if (err instanceof KuboError) return err
  const name = err?.name ?? ''
  const target = cid != null ? String(cid) : 'block'
  switch (name) {
    case 'BlockNotFoundWhileOfflineError':
    case 'NotFoundError':
    case 'InvalidConfigurationError': // no block brokers: the block is not local
    case 'LoadBlockFailedError':
      return new KuboError(`block was not found locally (offline): ipld: could not find ${target}`)
    case 'NotAFileError':
      return new KuboError('this dag node is a directory')
    case 'NotUnixFSError':
    case 'NoResolverError':
    case 'UnknownCodecError':
      return new KuboError(`unsupported node type: ${err.message}`)
    case 'DoesNotExistError':
    case 'NoPropError':
      return new KuboError(`no link named ${JSON.stringify(err.message)} under ${target}`)
    default:
      return new KuboError(err?.message ?? String(err))
  }
}

export function errorBody (err) {
  return JSON.stringify({ Message: err.message, Code: err.kuboCode ?? ERR_NORMAL, Type: 'error' }) + '\n'
}
