import { z } from 'zod'
import { schema } from '@tally/core'

/** Most epochs one dispute, ruling or list may name. */
export const MAX_EPOCH_LIST = 4096

/** A non-empty, strictly increasing list of epoch numbers. */
export const epochList = z
  .array(schema.uint)
  .min(1)
  .max(MAX_EPOCH_LIST)
  .refine((l) => l.every((e, i) => i === 0 || e > (l[i - 1] as number)), 'epochs must be strictly increasing')

export function sameEpochs(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((e, i) => e === b[i])
}
