import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Identity } from '@tally/core'
import { describe, expect, it } from 'vitest'
import { createTallyNode, localNetwork, parseNodeConfig } from '../src/index.ts'
import { dialAddress, loopbackNode } from './helpers.ts'

describe('node config', () => {
  it('fills documented defaults', () => {
    const c = parseNodeConfig({ identity: Identity.generate() })
    expect(c.listen).toEqual(['/ip4/0.0.0.0/tcp/4001'])
    expect(c.bootstrap).toEqual([])
    expect(c.network).toEqual({
      allowPrivateAddresses: false,
      allowList: [],
      mdns: false,
      gossipIpColocationWhitelist: [],
      pingIntervalMs: 30_000,
      maxConnections: 300,
    })
    expect(c.dht).toEqual({ kBucketSize: 20, querySelfIntervalMs: 300_000, providerRecordValidityMs: 1_800_000 })
    expect(c.discovery.reprovideIntervalMs).toBe(600_000)
    expect(c.gossip.observationShards).toBe(16)
  })

  it('names the bad field', () => {
    const field = (value: unknown) => {
      try {
        parseNodeConfig(value)
        return 'ok'
      } catch (err) {
        expect((err as Error).name).toBe('NodeConfigError')
        return (err as { details: { path?: string } }).details.path ?? 'none'
      }
    }
    const identity = Identity.generate()
    expect(field({ identity, bootstrap: ['/ip4/127.0.0.1/tcp/4001'] })).toBe('bootstrap.0')
    expect(field({ identity, listen: ['not a multiaddr'] })).toBe('listen.0')
    expect(field({ identity, network: { gossipIpColocationWhitelist: ['127.0.0.0/33'] } })).toBe('network.gossipIpColocationWhitelist.0')
    expect(field({ identity, dht: { kBucketSize: 1 } })).toBe('dht.kBucketSize')
    expect(field({ identity, surprise: true })).toBe('(root)')
    expect(field({ identity: 'not an identity' })).toBe('identity')
    expect(field({})).toBe('none') // neither dataDir nor identity
    expect(field({ identity, network: localNetwork() })).toBe('ok')
  })
})

describe('node lifecycle', () => {
  it('keeps the data directory identity across restarts (mode 0600)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tally-node-id-'))
    try {
      const config = { dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], network: localNetwork() }
      const a = await createTallyNode(config)
      await a.stop()
      const b = await createTallyNode(config)
      await b.stop()
      expect(b.peerId).toBe(a.peerId)
      expect(a.libp2p.peerId.toString()).toBe(a.peerId)
      expect((await stat(join(dir, 'identity.key'))).mode & 0o777).toBe(0o600)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('starts and stops idempotently, with registered components in order', async () => {
    const events: string[] = []
    const node = await createTallyNode({ identity: Identity.generate(), listen: ['/ip4/127.0.0.1/tcp/0'], network: localNetwork() }, { start: false })
    expect(node.status).toBe('stopped')
    await node.register({ start: () => void events.push('a:start'), stop: () => void events.push('a:stop') })
    await node.register({
      start: () => void events.push('b:start'),
      stop: async () => {
        await new Promise((r) => setTimeout(r, 50))
        events.push('b:stop')
      },
    })
    await Promise.all([node.start(), node.start()])
    expect(node.status).toBe('started')
    expect(node.multiaddrs().some((a) => a.startsWith('/ip4/127.0.0.1/') && a.endsWith(`/p2p/${node.peerId}`))).toBe(true)
    await Promise.all([node.stop(), node.stop()])
    expect(node.status).toBe('stopped')
    expect(events).toEqual(['a:start', 'b:start', 'b:stop', 'a:stop'])
    await node.stop()
    // and it can start again
    await node.start()
    expect(node.status).toBe('started')
    await node.stop()
  })

  it('boots through a bootstrap peer and survives an unreachable one', async () => {
    const seed = await loopbackNode()
    const dead = `/ip4/127.0.0.1/tcp/1/p2p/${Identity.generate().peerId}`
    const node = await loopbackNode({ bootstrap: [dead, dialAddress(seed)], bootTimeoutMs: 3_000 })
    try {
      expect(node.boot).toMatchObject({ configured: 2, connected: 1 })
      expect(node.boot!.routingTable).toBeGreaterThanOrEqual(1)
      expect(node.libp2p.getConnections(seed.libp2p.peerId).length).toBeGreaterThan(0)
    } finally {
      await node.stop()
      await seed.stop()
    }
  })

  it('refuses to start on a busy port and leaves nothing running', async () => {
    const first = await loopbackNode()
    try {
      const port = dialAddress(first).split('/')[4]
      await expect(loopbackNode({ listen: [`/ip4/127.0.0.1/tcp/${port}`] })).rejects.toThrow()
    } finally {
      await first.stop()
    }
  })
})
