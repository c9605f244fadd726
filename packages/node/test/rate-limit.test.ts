import { describe, expect, it } from 'vitest'
import { PeerRateLimiter } from '../src/index.ts'

describe('PeerRateLimiter', () => {
  it('allows a burst, then the sustained rate, per key', () => {
    let now = 0
    const limiter = new PeerRateLimiter({ perSecond: 2, burst: 3 }, { now: () => now })
    expect([1, 2, 3, 4].map(() => limiter.take('a'))).toEqual([true, true, true, false])
    expect(limiter.take('b')).toBe(true) // other keys are independent
    now += 499
    expect(limiter.take('a')).toBe(false)
    now += 1
    expect(limiter.take('a')).toBe(true)
    now += 10_000
    expect([1, 2, 3, 4].map(() => limiter.take('a'))).toEqual([true, true, true, false]) // refill caps at the burst
  })

  it('keeps a bounded number of keys, forgetting the least recently used', () => {
    const limiter = new PeerRateLimiter({ perSecond: 1, burst: 1 }, { maxKeys: 3, now: () => 0 })
    for (const k of ['a', 'b', 'c']) expect(limiter.take(k)).toBe(true)
    expect(limiter.take('a')).toBe(false) // a is now most recent
    expect(limiter.take('d')).toBe(true) // evicts b
    expect(limiter.size).toBe(3)
    expect(limiter.take('b')).toBe(true) // b was forgotten: a fresh burst
    expect(limiter.take('a')).toBe(false)
  })

  it('refuses a nonsensical limit', () => {
    expect(() => new PeerRateLimiter({ perSecond: 0, burst: 1 })).toThrow(RangeError)
    expect(() => new PeerRateLimiter({ perSecond: 1, burst: 0 })).toThrow(RangeError)
  })
})
