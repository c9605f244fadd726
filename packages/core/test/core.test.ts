import { describe, expect, it } from 'vitest'
import { Identity, decodeEntry, entrySignatureValid, signEntry, toBlock, signDocument, documentSignatureValid } from '../src/index.ts'

describe('core smoke', () => {
  it('signs and decodes an entry', () => {
    const id = Identity.generate()
    const pair = toBlock({ provider: id.peerId, consumer: id.peerId }).cid
    const b = signEntry(id, { v: 1, pair, author: id.peerId, seq: 1, prev: null, seen: null, time: 1, kind: 'note', body: { x: 1 } })
    const d = decodeEntry(b.bytes)
    expect(d.cid.equals(b.cid)).toBe(true)
    expect(entrySignatureValid(d.entry)).toBe(true)
    const doc = signDocument(id, 'observation', { a: 1 })
    expect(documentSignatureValid(doc)).toBe(true)
    expect(documentSignatureValid({ ...doc, body: { a: 2 } })).toBe(false)
  })
})
