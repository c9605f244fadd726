/**
 * Akash SDL quantities. Byte suffixes follow Akash's SDL unit table
 * (k, M, G, T, P, E decimal; Ki … Ei binary); CPU units are cores as a
 * number (`0.5`, `2`) or millicores with an `m` suffix (`500m`).
 */
const BYTE_SUFFIX: Record<string, number> = {
  '': 1,
  k: 1e3,
  Ki: 2 ** 10,
  M: 1e6,
  Mi: 2 ** 20,
  G: 1e9,
  Gi: 2 ** 30,
  T: 1e12,
  Ti: 2 ** 40,
  P: 1e15,
  Pi: 2 ** 50,
  E: 1e18,
  Ei: 2 ** 60,
}

/** Bytes of an Akash size such as `512Mi`, `1.5Gi`, `16G`, or a bare integer. Null when malformed or unsafe. */
export function parseByteQuantity(value: unknown): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null
  if (typeof value !== 'string') return null
  const m = /^(\d+(?:\.\d+)?)\s*([kMGTPE]i?)?$/.exec(value.trim())
  if (m === null) return null
  const factor = BYTE_SUFFIX[m[2] ?? '']
  if (factor === undefined) return null
  const bytes = Math.round(Number(m[1]) * factor)
  return Number.isSafeInteger(bytes) ? bytes : null
}

/** Millicores of an Akash CPU quantity (`0.5` → 500, `"100m"` → 100, `2` → 2000). Null when malformed. */
export function parseCpuMillicores(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : null
  if (typeof value !== 'string') return null
  const text = value.trim()
  const milli = /^(\d+)m$/.exec(text)
  if (milli !== null) return Number(milli[1])
  if (!/^\d+(?:\.\d+)?$/.test(text)) return null
  return Math.round(Number(text) * 1000)
}
