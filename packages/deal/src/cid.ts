import type { CID } from '@tally/core'

/** CID equality on the encoded bytes: cheaper than walking multiformats' objects in hot paths. */
export function cidEq(a: CID, b: CID): boolean {
  if (a === b) return true
  const x = a.bytes
  const y = b.bytes
  if (x.byteLength !== y.byteLength) return false
  for (let i = x.byteLength - 1; i >= 0; i--) if (x[i] !== y[i]) return false
  return true
}
