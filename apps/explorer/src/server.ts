import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ServerStartError } from './errors.ts'
import type { ExplorerSource } from './source.ts'

/** Longest request target accepted; every valid one is far shorter. */
export const MAX_URL_LENGTH = 2048
export const MAX_HEADER_BYTES = 16 * 1024
export const HEADERS_TIMEOUT_MS = 10_000
export const REQUEST_TIMEOUT_MS = 30_000
export const MAX_CONNECTIONS = 64
/** A pair id in a path: a CIDv1 in base32 (lineage's string form). */
const PAIR_ID = /^b[a-z2-7]{20,120}$/

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
}

interface Asset {
  type: string
  body: Buffer
}

/** The page's files, read once; the only paths served besides the API (so no path can reach the filesystem). */
function loadAssets(): Map<string, Asset> {
  const dir = new URL('./web/', import.meta.url)
  const file = (name: string, type: string): Asset => ({ type, body: readFileSync(new URL(name, dir)) })
  return new Map([
    ['/', file('index.html', 'text/html; charset=utf-8')],
    ['/app.js', file('app.js', 'text/javascript; charset=utf-8')],
    ['/plot.js', file('plot.js', 'text/javascript; charset=utf-8')],
    ['/style.css', file('style.css', 'text/css; charset=utf-8')],
    ['/favicon.svg', file('favicon.svg', 'image/svg+xml')],
  ])
}

/** CIDs as strings, bytes as base64: the views are plain already; this keeps a stray one from leaking as an object. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (value !== null && typeof value === 'object' && (value as { asCID?: unknown }).asCID === value) return String(value)
  return value
}

export interface ExplorerHandlerOptions {
  source: ExplorerSource
  /** Host names (without port) the Host header may carry; undefined accepts any. Guards a loopback server against DNS rebinding. */
  allowedHosts?: readonly string[]
  /** Told about a source's failures (the client gets a 500 with the error's name and message). */
  onError?: (err: unknown) => void
}

/** The explorer as a request handler, for a daemon that mounts it on a server of its own. */
export function createExplorerHandler(opts: ExplorerHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const assets = loadAssets()
  const allowed = opts.allowedHosts === undefined ? undefined : new Set(opts.allowedHosts.map((h) => h.toLowerCase()))

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer, head: boolean, extra: Record<string, string> = {}) => {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': String(bytes.byteLength), ...extra })
    res.end(head ? undefined : bytes)
  }
  const json = (res: ServerResponse, status: number, value: unknown, head: boolean) =>
    send(res, status, 'application/json; charset=utf-8', JSON.stringify(value, replacer), head, { 'cache-control': 'no-store' })
  const fail = (res: ServerResponse, status: number, error: string, message: string, head: boolean) => json(res, status, { error, message }, head)

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const head = req.method === 'HEAD'
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD')
      return fail(res, 405, 'MethodNotAllowed', 'only GET and HEAD are served', false)
    }
    const target = req.url ?? '/'
    if (target.length > MAX_URL_LENGTH) return fail(res, 414, 'UriTooLong', `request target exceeds ${MAX_URL_LENGTH} characters`, head)
    if (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') {
      res.setHeader('connection', 'close')
      return fail(res, 413, 'PayloadTooLarge', 'requests carry no body', head)
    }
    if (req.headers['transfer-encoding'] !== undefined) {
      res.setHeader('connection', 'close')
      return fail(res, 413, 'PayloadTooLarge', 'requests carry no body', head)
    }
    if (allowed !== undefined) {
      const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '')
      if (!allowed.has(host)) return fail(res, 421, 'MisdirectedRequest', 'unexpected Host header', head)
    }
    let path: string
    try {
      path = new URL(target, 'http://explorer.invalid').pathname
    } catch {
      return fail(res, 400, 'BadRequest', 'unreadable request target', head)
    }
    const asset = assets.get(path === '/index.html' ? '/' : path)
    if (asset !== undefined) return send(res, 200, asset.type, asset.body, head, { 'cache-control': 'no-cache' })
    if (path === '/api/pairs') return json(res, 200, { pairs: await opts.source.pairs() }, head)
    const m = /^\/api\/pairs\/([^/]+)$/.exec(path)
    if (m !== null) {
      const id = m[1] as string
      if (!PAIR_ID.test(id)) return fail(res, 404, 'NotFound', 'not a pair id', head)
      const detail = await opts.source.pair(id)
      if (detail === undefined) return fail(res, 404, 'NotFound', `no pair ${id}`, head)
      return json(res, 200, detail, head)
    }
    return fail(res, 404, 'NotFound', `nothing at ${path.slice(0, 200)}`, head)
  }

  return (req, res) => {
    route(req, res).catch((err: unknown) => {
      opts.onError?.(err)
      if (res.headersSent) {
        res.destroy()
        return
      }
      const e = err instanceof Error ? err : new Error(String(err))
      fail(res, 500, e.name, e.message, req.method === 'HEAD')
    })
  }
}

export interface ExplorerServerOptions {
  source: ExplorerSource
  /** Default 127.0.0.1. Anything but loopback exposes every pair log held to the network: pass it on purpose. */
  host?: string
  /** Default 0: any free port. */
  port?: number
  onError?: (err: unknown) => void
}

export interface ExplorerServer {
  readonly url: string
  readonly host: string
  readonly port: number
  readonly server: Server
  /** Stop listening, end open connections, and close the source. */
  close(): Promise<void>
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1'])

/** Serve the explorer over HTTP. Resolves once listening. */
export async function createExplorerServer(opts: ExplorerServerOptions): Promise<ExplorerServer> {
  const host = opts.host ?? '127.0.0.1'
  const port = opts.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ServerStartError(`port must be an integer from 0 to 65535, got ${port}`)
  const loopback = LOOPBACK.has(host)
  const handler = createExplorerHandler({
    source: opts.source,
    ...(loopback ? { allowedHosts: ['127.0.0.1', 'localhost', '[::1]'] } : {}),
    ...(opts.onError !== undefined ? { onError: opts.onError } : {}),
  })
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS }, handler)
  server.maxConnections = MAX_CONNECTIONS
  server.keepAliveTimeout = 5_000
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new ServerStartError(`cannot listen on ${host}:${port}: ${err.code ?? err.message}`, { host, port }, { cause: err }))
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  const bound = (server.address() as AddressInfo).port
  const urlHost = host.includes(':') ? `[${host}]` : host
  let closing: Promise<void> | undefined
  return {
    url: `http://${urlHost}:${bound}/`,
    host,
    port: bound,
    server,
    close(): Promise<void> {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve())
          server.closeAllConnections()
        })
        await opts.source.close?.()
      })()
      return closing
    },
  }
}
