import { type EntryBlock, TallyError } from '@tally/core'
import { describe, expect, it } from 'vitest'
import { makePair, ownChain, rejectsWith, snapshot } from './helpers.ts'

class IllegalTransitionError extends TallyError {}

describe('ingest validate hook', () => {
  it('sees exactly the new entries, after the log checks, and a throw stores nothing', async () => {
    const { p, c, sc, pair } = await makePair()
    await p.append('note', { n: 1 })
    await p.append('note', { n: 2 })
    const chain = await ownChain(p)
    const seen: number[][] = []
    await c.ingest(chain.slice(0, 2), { validate: (added) => void seen.push(added.map((b) => b.entry.seq)) })
    expect(seen).toEqual([[1, 2]])

    await p.append('note', { n: 3, illegal: true })
    const all = await ownChain(p)
    const before = await snapshot(sc, pair, c.id)
    const refuse = async (added: readonly EntryBlock[]) => {
      await Promise.resolve()
      if (added.some((b) => (b.entry.body as { illegal?: boolean }).illegal === true)) throw new IllegalTransitionError('illegal note')
    }
    // Duplicates and the new entries in one batch: the hook sees only the new ones, and its throw aborts all of it.
    await rejectsWith(c.ingest(all, { validate: refuse, meta: [{ key: 'session', value: new Uint8Array([1]) }] }), 'IllegalTransitionError')
    expect(await snapshot(sc, pair, c.id)).toEqual(before)
    expect(c.heads().provider?.seq).toBe(2)

    // A batch of duplicates only never reaches the hook.
    let called = false
    const dup = await c.ingest(all.slice(0, 2), {
      validate: () => {
        called = true
      },
    })
    expect(dup).toMatchObject({ added: [], duplicates: 2 })
    expect(called).toBe(false)
    // The log stays usable after a refusal.
    const ok = await c.ingest(all, { validate: () => undefined })
    expect(ok.added.map((b) => b.entry.seq)).toEqual([3, 4])
  })

  it('is not called when the log itself refuses the batch', async () => {
    const { p, c } = await makePair()
    await p.append('note', { n: 1 })
    const chain = await ownChain(p)
    let called = false
    await rejectsWith(
      c.ingest([chain[1]!], {
        validate: () => {
          called = true
        },
      }),
      'GapError',
    )
    expect(called).toBe(false)
  })
})
