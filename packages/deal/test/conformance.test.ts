import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseWith, schema } from '@tally/core'
import { describe, expect, it } from 'vitest'
import { decodeEpochEvidence, evaluateEpoch, evidenceRuleSchema, settleVerdict } from '../src/index.ts'

const dir = join(import.meta.dirname, 'vectors')
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()

interface Vector {
  description: string
  rule: unknown
  price: unknown
  evidence: unknown
  expect:
    | { verdict: string; reason: string; payBp: number; holdBp: number; amount: number; held: number; monitors: string; weight: { up: number; down: number } }
    | { error: string }
}

describe('evidence rule v1 conformance vectors', () => {
  it('has vectors for every verdict', () => {
    for (const prefix of ['performed-', 'not-performed-', 'disputed-', 'insufficient-', 'rejected-']) {
      expect(files.some((f) => f.startsWith(prefix))).toBe(true)
    }
  })

  for (const file of files) {
    it(file, () => {
      const v = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Vector
      const rule = parseWith(evidenceRuleSchema, v.rule, 'rule')
      const price = parseWith(schema.money, v.price, 'price')
      const evidence = decodeEpochEvidence(v.evidence)
      if ('error' in v.expect) {
        expect(file.startsWith('rejected-')).toBe(true)
        let name = 'none'
        try {
          evaluateEpoch(rule, evidence)
        } catch (err) {
          name = (err as Error).name
        }
        expect(name).toBe(v.expect.error)
        return
      }
      // The file name states the expected verdict.
      expect(file.startsWith(`${v.expect.verdict}-`)).toBe(true)
      const verdict = evaluateEpoch(rule, evidence)
      const money = settleVerdict(verdict, price)
      expect({
        verdict: verdict.verdict,
        reason: verdict.reason,
        payBp: verdict.payBp,
        holdBp: verdict.holdBp,
        amount: money.amount.amount,
        held: money.held.amount,
        monitors: verdict.monitors,
        weight: { up: verdict.weight.up, down: verdict.weight.down },
      }).toEqual(v.expect)
      // Order of the evidence never matters.
      const reversed = { ...evidence, observations: [...evidence.observations].reverse() }
      expect(evaluateEpoch(rule, reversed)).toEqual(verdict)
    })
  }
})
