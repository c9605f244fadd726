import { RailConfigError } from './errors.ts'
import { assertRailName, boundText, checkRelease, failed, type Rail, type RailOutcome, type RailRelease, safeReference } from './rail.ts'

export interface HttpRailOptions {
  /** http(s) endpoint of the user's payment system; receives the release as a JSON POST. */
  url: string
  /** Per-attempt time limit. */
  timeoutMs: number
  headers?: Record<string, string>
  /** Further attempts after a 5xx, a network error or a timeout (never after a 4xx). Default 3. */
  retries?: number
  /** First backoff; doubles per attempt. Default 200 ms. */
  backoffMs?: number
  name?: string
}

const MAX_RESPONSE_BYTES = 64 * 1024
const MAX_BACKOFF_MS = 30_000

async function readBounded(res: Response): Promise<string> {
  if (res.body === null) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  while (total < MAX_RESPONSE_BYTES) {
    const { done, value } = await reader.read()
    if (done) break
    chunks.push(value)
    total += value.byteLength
  }
  await reader.cancel().catch(() => {})
  return Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES).toString('utf8')
}

function referenceFrom(body: string): string | null {
  try {
    const parsed: unknown = JSON.parse(body)
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? safeReference((parsed as { reference?: unknown }).reference) : null
  } catch {
    return null
  }
}

/**
 * POSTs each release as JSON to the user's payment system with
 * `Idempotency-Key: <voucher CID>`, so a retried release is not paid
 * twice. 2xx is paid (reference from the JSON response's `reference`);
 * 4xx is refused at once; 5xx, network errors and timeouts are retried
 * with exponential backoff.
 */
export class HttpRail implements Rail {
  readonly name: string
  readonly #url: URL
  readonly #timeoutMs: number
  readonly #headers: Record<string, string>
  readonly #retries: number
  readonly #backoffMs: number

  constructor(opts: HttpRailOptions) {
    let url: URL
    try {
      url = new URL(opts.url)
    } catch {
      throw new RailConfigError('http rail url is not a URL')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RailConfigError('http rail url must be http or https')
    if (!Number.isSafeInteger(opts.timeoutMs) || opts.timeoutMs < 1) throw new RailConfigError('http rail timeoutMs must be a positive integer')
    const retries = opts.retries ?? 3
    if (!Number.isSafeInteger(retries) || retries < 0 || retries > 20) throw new RailConfigError('http rail retries must be an integer in [0, 20]')
    const backoffMs = opts.backoffMs ?? 200
    if (!Number.isSafeInteger(backoffMs) || backoffMs < 0) throw new RailConfigError('http rail backoffMs must be a non-negative integer')
    this.name = assertRailName(opts.name ?? 'http')
    this.#url = url
    this.#timeoutMs = opts.timeoutMs
    this.#headers = { ...(opts.headers ?? {}) }
    this.#retries = retries
    this.#backoffMs = backoffMs
  }

  async release(release: RailRelease): Promise<RailOutcome> {
    const checked = checkRelease(this.name, release)
    if (!checked.ok) return checked.outcome
    const r = checked.release
    const body = JSON.stringify(r)
    const headers = { ...this.#headers, 'content-type': 'application/json', 'idempotency-key': r.voucher }
    let last = ''
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      if (attempt > 0) await new Promise((res) => setTimeout(res, Math.min(MAX_BACKOFF_MS, this.#backoffMs * 2 ** (attempt - 1))))
      const tries = `after ${attempt + 1} attempt${attempt === 0 ? '' : 's'}`
      try {
        const res = await fetch(this.#url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.#timeoutMs), redirect: 'error' })
        const text = (await readBounded(res)).trim()
        const detail = `HTTP ${res.status}${text === '' ? '' : `: ${text}`}`
        if (res.status >= 200 && res.status < 300) return { rail: this.name, status: 'ok', detail: boundText(detail), reference: referenceFrom(text) }
        if (res.status < 500) return failed(this.name, `${detail} (${tries})`)
        last = `${detail} (${tries})`
      } catch (err) {
        const e = err as Error
        const why =
          e.name === 'TimeoutError' ? `timed out after ${this.#timeoutMs} ms` : `${e.message}${e.cause instanceof Error ? `: ${e.cause.message}` : ''}`
        last = `${why} (${tries})`
      }
    }
    return failed(this.name, last)
  }
}
