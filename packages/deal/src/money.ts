import { type Money, schema } from '@tally/core'

/** A fraction in basis points: 0 … 10000 (100.00 %). Records never hold floats. */
export const bp = schema.uint.max(10_000)
export const BP_ONE = 10_000

/** floor(amount × bp / 10000), exact for any safe integer amount. */
export function applyBp(amount: number, fraction: number): number {
  return Number((BigInt(amount) * BigInt(fraction)) / 10_000n)
}

/** amount × n, or null when the product is not a safe integer. */
export function timesCount(amount: number, n: number): number | null {
  const p = BigInt(amount) * BigInt(n)
  return p <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(p) : null
}

export function money(amount: number, asset: string): Money {
  return { amount, asset }
}
