import { randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile, rm, writeFile, chmod } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { TallyError } from '@tally/core'
import { ControlApiError } from './errors.ts'
import type { Log } from './log.ts'
import type { Metrics } from './metrics.ts'

/** Token file in the data directory (0600); the CLI reads it to talk to the daemon. */
export const CONTROL_TOKEN_FILE = 'control.token'
/** Written once listening: {url, pid, role, peerId}; removed on clean shutdown. */
export const CONTROL_ADDRESS_FILE = 'control.json'
/** Request bodies above this are refused with 413. */
export const MAX_CONTROL_BODY = 1024 * 1024

export interface ControlRequest {
  params: Record<string, string>
  query: URLSearchParams
  body: unknown
}

/** A handler returns JSON, or raw bytes with a content type (exports). */
export type ControlResult = unknown | { contentType: string; bytes: Uint8Array; filename?: string }
export type ControlHandler = (req: ControlRequest) => Promise<ControlResult> | ControlResult

interface Route {
  method: string
  parts: string[]
  handler: ControlHandler
}

export interface ControlServerOptions {
  dataDir: string
  /** 0 picks a free port. */
  port: number
  log: Log
  metrics?: Metrics
  /** Serves everything outside /v1 and /metrics (the explorer). */
  fallback?: (req: IncomingMessage, res: ServerResponse) => void
  info: Record<string, unknown>
}

export async function ensureControlToken(dataDir: string): Promise<string> {
  const file = join(dataDir, CONTROL_TOKEN_FILE)
  try {
    const token = (await readFile(file, 'utf8')).trim()
    if (token.length >= 32) return token
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const token = randomBytes(32).toString('hex')
  await writeFile(file, `${token}\n`, { mode: 0o600 })
  await chmod(file, 0o600)
  return token
}

function isRaw(v: unknown): v is { contentType: string; bytes: Uint8Array; filename?: string } {
  return v !== null && typeof v === 'object' && 'contentType' in v && 'bytes' in v && (v as { bytes: unknown }).bytes instanceof Uint8Array
}

function replacer(_k: string, v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64')
  if (typeof v === 'bigint') return v.toString()
  if (v !== null && typeof v === 'object' && (v as { asCID?: unknown }).asCID === v) return String(v)
  if (v instanceof Map) return Object.fromEntries(v)
  if (v instanceof Set) return [...v]
  return v
}

/**
 * The daemon's local HTTP surface on 127.0.0.1: `/v1/*` is the control API
 * (bearer token from the data directory), `/metrics` is Prometheus text,
 * anything else goes to `fallback` (the explorer).
 */
export class ControlServer {
  readonly #routes: Route[] = []
  readonly #opts: ControlServerOptions
  #server: Server | undefined
  #token = ''
  url = ''

  constructor(opts: ControlServerOptions) {
    this.#opts = opts
  }

  /** Serve `path` under /v1 (given as `/v1/status` or `/status`); `:name` segments become params. */
  route(method: 'GET' | 'POST' | 'DELETE', path: string, handler: ControlHandler): void {
    const parts = path.split('/').filter(Boolean)
    this.#routes.push({ method, parts: parts[0] === 'v1' ? parts : ['v1', ...parts], handler })
  }

  async start(): Promise<string> {
    this.#token = await ensureControlToken(this.#opts.dataDir)
    const server = createServer((req, res) => void this.#handle(req, res))
    server.headersTimeout = 10_000
    server.requestTimeout = 60_000
    server.maxConnections = 64
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#opts.port, '127.0.0.1', () => resolve())
    })
    const { port } = server.address() as AddressInfo
    this.url = `http://127.0.0.1:${port}`
    await writeFile(join(this.#opts.dataDir, CONTROL_ADDRESS_FILE), `${JSON.stringify({ url: this.url, pid: process.pid, ...this.#opts.info })}\n`, {
      mode: 0o600,
    })
    return this.url
  }

  async stop(): Promise<void> {
    const server = this.#server
    if (server === undefined) return
    this.#server = undefined
    await rm(join(this.#opts.dataDir, CONTROL_ADDRESS_FILE), { force: true })
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  #authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? ''
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7).trim() : '')
    const want = Buffer.from(this.#token)
    return given.byteLength === want.byteLength && timingSafeEqual(given, want)
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (url.pathname === '/metrics' && this.#opts.metrics !== undefined) {
      const text = await this.#opts.metrics.render()
      res.writeHead(200, { 'content-type': this.#opts.metrics.contentType })
      res.end(text)
      return
    }
    if (!url.pathname.startsWith('/v1/')) {
      if (this.#opts.fallback !== undefined) this.#opts.fallback(req, res)
      else this.#send(res, 404, { error: 'NotFound', message: 'no such route' })
      return
    }
    try {
      if (!this.#authorized(req)) throw new ControlApiError('missing or wrong bearer token (see control.token in the data directory)', 401)
      const parts = url.pathname.split('/').filter(Boolean)
      const match = this.#match(req.method ?? 'GET', parts)
      if (match === undefined) throw new ControlApiError(`no route ${req.method} ${url.pathname}`, 404)
      const body = req.method === 'POST' ? await readJsonBody(req) : undefined
      const result = await match.route.handler({ params: match.params, query: url.searchParams, body })
      if (isRaw(result)) {
        res.writeHead(200, {
          'content-type': result.contentType,
          'content-length': result.bytes.byteLength,
          ...(result.filename !== undefined ? { 'content-disposition': `attachment; filename="${result.filename}"` } : {}),
        })
        res.end(result.bytes)
      } else this.#send(res, 200, result ?? { ok: true })
    } catch (err) {
      const status = err instanceof ControlApiError ? err.status : err instanceof TallyError ? 400 : 500
      if (status === 500) this.#opts.log.error('control request failed', { path: url.pathname, err })
      this.#send(res, status, { error: err instanceof Error ? err.name : 'Error', message: err instanceof Error ? err.message : String(err) })
    }
  }

  #match(method: string, parts: string[]): { route: Route; params: Record<string, string> } | undefined {
    for (const route of this.#routes) {
      if (route.method !== method || route.parts.length !== parts.length) continue
      const params: Record<string, string> = {}
      let ok = true
      for (let i = 0; i < parts.length && ok; i++) {
        const want = route.parts[i]!
        if (want.startsWith(':')) params[want.slice(1)] = decodeURIComponent(parts[i]!)
        else ok = want === parts[i]
      }
      if (ok) return { route, params }
    }
    return undefined
  }

  #send(res: ServerResponse, status: number, value: unknown): void {
    const text = JSON.stringify(value, replacer)
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    res.end(text)
  }
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).byteLength
    if (size > MAX_CONTROL_BODY) throw new ControlApiError(`request body over ${MAX_CONTROL_BODY} bytes`, 413)
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return undefined
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new ControlApiError('request body is not JSON', 400)
  }
}
