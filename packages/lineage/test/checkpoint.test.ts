import { signDocument, signEntry } from '@tally/core'
import { describe, expect, it } from 'vitest'
import { cosignCheckpoint, proposeCheckpoint } from '../src/checkpoint.ts'
import { parseCheckpointBody, parseProposalBody } from '../src/checkpoint-statement.ts'
import {
  checkpointConsistency,
  checkpointLeaves,
  decodeInclusionProof,
  encodeInclusionProof,
  inclusionProof,
  signedCheckpoint,
  verifyInclusion,
  verifyWitness,
  witnessCosign,
} from '../src/inclusion.ts'
import { PairLog } from '../src/pair-log.ts'
import { makePair, ownChain, rejectsWith, seeded, snapshot, sync } from './helpers.ts'

async function busyPair() {
  const x = await makePair()
  for (let i = 0; i < 5; i++) {
    await x.p.append('usage', { i, obs: signDocument(seeded(30), 'observation', { i }) })
    await sync(x.p, x.c)
    await x.c.append('voucher', { i })
    await sync(x.c, x.p)
  }
  return x
}

async function checkpoint(x: Awaited<ReturnType<typeof makePair>>, balances: unknown, proposer: 'p' | 'c' = 'p') {
  const [a, b] = proposer === 'p' ? [x.p, x.c] : [x.c, x.p]
  const proposal = await proposeCheckpoint(a, balances)
  await sync(a, b)
  const done = await cosignCheckpoint(b, proposal)
  await sync(b, a)
  return { proposal, done }
}

describe('checkpoints', () => {
  it('are proposed, countersigned and tracked the same by both parties', async () => {
    const x = await busyPair()
    const { done } = await checkpoint(x, { USD: { paid: 500 } })
    const body = parseCheckpointBody(done.entry.body)
    expect(body.statement.heads.provider?.seq).toBe(6)
    expect(body.statement.heads.consumer?.seq).toBe(6)
    expect(body.statement.size).toBe(12)
    expect(x.p.latestCheckpoint()?.root).toEqual(body.statement.root)
    expect(x.c.latestCheckpoint()?.statement.equals(x.p.latestCheckpoint()!.statement)).toBe(true)
    // The second extends the first; either party may propose.
    await x.c.append('voucher', { more: 1 })
    await sync(x.c, x.p)
    const second = await checkpoint(x, { USD: { paid: 600 } }, 'c')
    const s2 = parseCheckpointBody(second.done.entry.body).statement
    expect(s2.prev?.equals(body.statement.prev === null ? x.p.checkpoints()[0]!.statement : body.statement.prev)).toBe(true)
    expect(x.p.checkpoints().length).toBe(2)
    expect(x.p.latestCheckpoint()?.size).toBe(s2.size)
  })

  it('survive a reopen of the log', async () => {
    const x = await busyPair()
    await checkpoint(x, { USD: { paid: 1 } })
    const again = await PairLog.open(x.sp, x.pair, x.provider)
    expect(again.latestCheckpoint()?.root).toEqual(x.p.latestCheckpoint()?.root)
  })

  it('refuse a proposal that does not match the cosigner’s copy, changing nothing', async () => {
    const x = await busyPair()
    const proposal = await proposeCheckpoint(x.p, { USD: { paid: 1 } })
    await sync(x.p, x.c)
    await rejectsWith(
      cosignCheckpoint(x.c, proposal, {
        checkBalances: () => {
          throw new Error('balances disagree')
        },
      }),
      'Error',
    )
    // A proposal with a forged root, signed properly by its author.
    const body = parseProposalBody(proposal.entry.body)
    const forged = { ...body.statement, root: new Uint8Array(32) }
    const bad = await x.p.append('checkpoint-proposal', { statement: forged, sig: x.p.signStatement(forged) })
    await sync(x.p, x.c)
    const before = await snapshot(x.sc, x.pair, x.c.id)
    await rejectsWith(cosignCheckpoint(x.c, bad), 'CheckpointError')
    expect(await snapshot(x.sc, x.pair, x.c.id)).toEqual(before)
    // Nobody countersigns their own proposal, and a proposal must be held first.
    await rejectsWith(cosignCheckpoint(x.p, proposal), 'CheckpointError')
    const fresh = await makePair()
    await rejectsWith(cosignCheckpoint(fresh.c, proposal), 'CheckpointError')
  })

  it('refuse an ingested checkpoint whose signatures or root do not verify, changing nothing', async () => {
    const x = await busyPair()
    const proposal = await proposeCheckpoint(x.p, { USD: { paid: 1 } })
    await sync(x.p, x.c)
    const head = (await ownChain(x.c)).at(-1)!
    const p = parseProposalBody(proposal.entry.body)
    const sigs = { provider: p.sig, consumer: x.c.signStatement(p.statement) }
    const entry = (body: unknown) =>
      signEntry(x.consumer, {
        v: 1,
        pair: x.c.id,
        author: x.consumer.peerId,
        seq: head.entry.seq + 1,
        prev: head.cid,
        seen: proposal.cid,
        time: Date.now(),
        kind: 'checkpoint',
        body,
      })
    const before = await snapshot(x.sp, x.pair, x.p.id)
    await rejectsWith(
      x.p.ingest([entry({ statement: p.statement, sigs: { ...sigs, provider: new Uint8Array(64).fill(1) }, proposal: proposal.cid })]),
      'CheckpointError',
    )
    const otherRoot = { ...p.statement, root: new Uint8Array(32) }
    const resigned = { provider: x.p.signStatement(otherRoot), consumer: x.c.signStatement(otherRoot) }
    await rejectsWith(x.p.ingest([entry({ statement: otherRoot, sigs: resigned, proposal: proposal.cid })]), 'CheckpointError')
    expect(await snapshot(x.sp, x.pair, x.p.id)).toEqual(before)
    await x.p.ingest([entry({ statement: p.statement, sigs, proposal: proposal.cid })])
    expect(x.p.checkpoints().length).toBe(1)
    await rejectsWith(
      x.c.append('checkpoint', { statement: p.statement, sigs: { ...sigs, provider: new Uint8Array(64).fill(1) }, proposal: proposal.cid }),
      'CheckpointError',
    )
  })

  it('prove one entry to an auditor with an RFC 6962 audit path', async () => {
    const x = await busyPair()
    await checkpoint(x, { USD: { paid: 5 } })
    const leaves = await checkpointLeaves(x.p, x.p.latestCheckpoint()!)
    expect(leaves.length).toBe(12)
    for (const b of [...(await ownChain(x.p)).slice(0, 6), ...(await ownChain(x.c)).slice(0, 6)]) {
      const proof = await inclusionProof(x.p, b.cid)
      const round = decodeInclusionProof(encodeInclusionProof(proof))
      const shown = verifyInclusion(round)
      expect(shown.entry.cid.equals(b.cid)).toBe(true)
      // Tampering with the index, path or entry is caught.
      expect(() => verifyInclusion({ ...proof, index: (proof.index + 1) % 12 })).toThrow(expect.objectContaining({ name: 'ProofError' }))
      expect(() => verifyInclusion({ ...proof, path: proof.path.slice(1) })).toThrow(expect.objectContaining({ name: 'ProofError' }))
      expect(() => verifyInclusion({ ...proof, sigs: { ...proof.sigs, consumer: proof.sigs.provider } })).toThrow(
        expect.objectContaining({ name: 'ProofError' }),
      )
    }
    // An entry the checkpoint does not cover has no proof.
    const later = await x.p.append('note', {})
    await rejectsWith(inclusionProof(x.p, later.cid), 'ProofError')
  })

  it('let witnesses cosign only checkpoints that extend what they saw', async () => {
    const x = await busyPair()
    await checkpoint(x, { USD: { paid: 1 } })
    const first = x.p.latestCheckpoint()!
    await x.p.append('usage', { more: true })
    await sync(x.p, x.c)
    await checkpoint(x, { USD: { paid: 2 } })
    const second = x.p.latestCheckpoint()!
    const witness = seeded(40)
    const s1 = await signedCheckpoint(x.p, first)
    const s2 = await signedCheckpoint(x.p, second)
    const w1 = witnessCosign(witness, s1)
    expect(verifyWitness(w1, s1.statement).body.size).toBe(first.size)
    const proof = await checkpointConsistency(x.p, first.statement, second.statement)
    const w2 = witnessCosign(witness, s2, { previous: { statement: s1.statement, proof } })
    expect(verifyWitness(w2).body.statement.equals(second.statement)).toBe(true)
    // A rewritten history (same sizes, other leaves) is refused.
    const rewritten = { ...s1.statement, root: new Uint8Array(32).fill(9) }
    expect(() => witnessCosign(witness, s2, { previous: { statement: rewritten, proof } })).toThrow(expect.objectContaining({ name: 'ProofError' }))
    expect(() => verifyWitness({ ...w1, sig: w2.sig })).toThrow(expect.objectContaining({ name: 'SignatureError' }))
  })
})
