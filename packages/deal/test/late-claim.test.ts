/**
 * A partition between the parties outlasting the evidence grace: the
 * consumer, cut off from the provider's usage claims, judges the epochs on
 * their absence (`no-usage`, not performed) while the monitors saw the
 * provider up. When the claims arrive the evidence diverges, and the
 * provider disputes those epochs by itself. Found by test/partitions.test.ts
 * (a pair cut longer than the grace: the provider went unpaid for served
 * epochs and no dispute opened).
 */
import { describe, expect, it } from 'vitest'
import { buildDispute, buildEvaluation, type DealState, type Duty, duties, epochOf, type PartyRole } from '../src/index.ts'
import { activeDeal, endOf, monitors, observation, TestPair, terms, usageFigures } from './helpers.ts'

const grace = terms().timeouts.evidenceGraceMs
const opens = (p: TestPair, role: PartyRole, now: number) => duties(p.state, role, now).filter((x) => x.type === 'open-dispute')

describe('a usage claim recorded after a verdict that found none', () => {
  it('is disputed by the provider when it claims service; not when it admits the outage', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    const deal = () => p.state.deals.get(id.toString()) as DealState
    // The monitors saw the provider up in epochs 0 and 1; the consumer, partitioned from the provider, got no usage.
    for (const e of [0, 1]) for (const m of monitors) p.append('consumer', 'observation', { deal: id, observation: observation(m, e, 100) }, endOf(e) + 1)
    for (const e of [0, 1]) p.append('consumer', 'evaluation', buildEvaluation(p.state, id, e), endOf(e) + grace)
    expect([0, 1].map((e) => epochOf(deal(), e).evaluation?.reason)).toEqual(['no-usage', 'no-usage'])
    expect(opens(p, 'provider', endOf(1) + grace)).toEqual([])

    // Written during the partition, before the provider saw the verdicts: served in epoch 0, down in epoch 1.
    p.append('provider', 'usage', { deal: id, epoch: 0, ...usageFigures() }, endOf(0) + 500, { blind: true })
    p.append('provider', 'usage', { deal: id, epoch: 1, ...usageFigures(0) }, endOf(1) + 500, { blind: true })
    const now = endOf(1) + grace + 1
    expect(opens(p, 'provider', now)).toEqual([{ type: 'open-dispute', deal: id, epochs: [0], reason: 'usage claim recorded after a verdict that found none' }])
    // The consumer gave the verdict; it has nothing to dispute.
    expect(opens(p, 'consumer', now)).toEqual([])

    const duty = opens(p, 'provider', now)[0] as Extract<Duty, { type: 'open-dispute' }>
    p.append('provider', 'dispute', buildDispute(id, duty.epochs, duty.reason), now)
    expect(deal().openDisputes).toHaveLength(1)
    expect(deal().disputes.get(deal().openDisputes[0]!)?.by).toBe('provider')
    expect(opens(p, 'provider', now + 1)).toEqual([])
    // Until the arbiter rules, neither party can certify.
    expect(duties(p.state, 'provider', endOf(terms().epochs! - 1) + 60_000).some((x) => x.type === 'certificate')).toBe(false)
  })
})
