import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CONTROL_ADDRESS_FILE, CONTROL_TOKEN_FILE } from './control.ts'
import { ControlApiError, DaemonNotRunningError } from './errors.ts'

/** Talks to a running daemon through the control API found in its data directory. */
export class ControlClient {
  constructor(
    readonly url: string,
    readonly token: string,
    readonly info: Record<string, unknown>,
  ) {}

  /** Find the daemon of `dataDir`; throws DaemonNotRunningError when none answers. */
  static async connect(dataDir: string): Promise<ControlClient> {
    let info: Record<string, unknown>
    let token: string
    try {
      info = JSON.parse(await readFile(join(dataDir, CONTROL_ADDRESS_FILE), 'utf8')) as Record<string, unknown>
      token = (await readFile(join(dataDir, CONTROL_TOKEN_FILE), 'utf8')).trim()
    } catch {
      throw new DaemonNotRunningError(`no running daemon for ${dataDir}`)
    }
    const client = new ControlClient(String(info['url']), token, info)
    try {
      await client.get('/v1/status')
    } catch (err) {
      if (err instanceof ControlApiError) throw err
      throw new DaemonNotRunningError(`the daemon for ${dataDir} does not answer at ${client.url}`)
    }
    return client
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.request<T>('GET', path)
  }

  post<T = unknown>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body)
  }

  async getBytes(path: string): Promise<Uint8Array> {
    const res = await fetch(this.url + path, { headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(120_000) })
    if (!res.ok) throw await toError(res)
    return new Uint8Array(await res.arrayBuffer())
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(120_000),
    })
    if (!res.ok) throw await toError(res)
    return (await res.json()) as T
  }
}

async function toError(res: Response): Promise<ControlApiError> {
  let message = `${res.status} ${res.statusText}`
  try {
    const j = (await res.json()) as { error?: string; message?: string }
    if (j.message !== undefined) message = j.message
  } catch {}
  return new ControlApiError(message, res.status)
}
