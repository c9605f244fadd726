import { it } from 'vitest'
import { dialAddress, waitFor } from './helpers.ts'
import { pairOf, pairPeer, stopPeers } from './pair-helpers.ts'
it('dbg', async () => {
    const p = await pairPeer()
    const c = await pairPeer()
    const pair = pairOf(p, c)
    for (let round = 0; round < 30; round++) {
      await Promise.allSettled([
        p.sessions.connect(pair, [dialAddress(c.node)]),
        c.sessions.connect(pair, [dialAddress(p.node)]),
      ])
      await waitFor(() => p.sessions.status(pair).connected && c.sessions.status(pair).connected, 5_000)
      await p.sessions.logOf(pair).append('note', { round })
      await c.sessions.logOf(pair).append('note', { round })
      try {
        await Promise.all([p.sessions.waitForSync(pair, 3_000), c.sessions.waitForSync(pair, 3_000)])
      } catch (e) {
        console.log('FAILED round', round, p.node.peerId < c.node.peerId ? 'p lower' : 'c lower')
        console.log('P', JSON.stringify(p.sessions.status(pair)))
        console.log('C', JSON.stringify(c.sessions.status(pair)))
        console.log('PE', JSON.stringify(p.events.slice(-6)))
        console.log('CE', JSON.stringify(c.events.slice(-6)))
        const streams = (n: typeof p) => n.node.libp2p.getConnections().flatMap((conn) => conn.streams.filter((s) => s.protocol === '/tally/pair/1.0.0').map(s => `${s.direction}:${s.status}`))
        console.log(streams(p), streams(c))
        throw e
      }
      await p.node.libp2p.hangUp(c.node.libp2p.peerId)
      await waitFor(() => !p.sessions.status(pair).connected && !c.sessions.status(pair).connected, 3_000)
    }
    await stopPeers([p,c])
})
