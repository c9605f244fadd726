import { mkdir, readFile } from 'node:fs/promises'
import { decode, decodeCredential, type Credential, issueCredential } from '@tally/core'
import { ControlServer, type Log, Metrics, relativeTo } from '@tally/daemon'
import { attestHardware } from '@tally/executor'
import { createExplorerHandler, storeSource } from '@tally/explorer'
import { type OfferBody, ProbeResponder, signOffer } from '@tally/node'
import type { StoreWriteError } from '@tally/lineage'
import { ProviderHooks, registerPeerMetrics, registerPeerRoutes, TallyPeer } from '@tally/peer'
import type { ProviderConfig } from './config.ts'

/**
 * The provider daemon: serves a signed offer found by capability over the
 * DHT, answers monitors' probes, accepts fitting proposals, runs the
 * workloads, and settles each deal in its pair log.
 */
export class ProviderDaemon {
  peer!: TallyPeer
  control!: ControlServer
  offer: OfferBody | undefined

  constructor(
    readonly config: ProviderConfig,
    readonly log: Log,
    /** What to do when the store fails a durable write (main.ts: stop and exit EXIT_IO_ERROR). */
    readonly opts: { onStoreFailure?: (err: StoreWriteError) => void } = {},
  ) {}

  async start(): Promise<void> {
    const c = this.config
    const dataDir = c.dataDir
    const workDir = relativeTo(`${dataDir}/`, c.settings.workDir)
    await mkdir(workDir, { recursive: true })
    const credentials: Credential[] = []
    for (const f of c.settings.credentials) credentials.push(decodeCredential(decode(await readFile(f))))
    let hooks: ProviderHooks | undefined
    this.peer = await TallyPeer.start({
      dataDir,
      node: c.node,
      log: this.log,
      addressBook: c.settings.peers,
      ...(this.opts.onStoreFailure === undefined ? {} : { onStoreFailure: this.opts.onStoreFailure }),
      acceptPair: (pair) => pair.provider === this.peer.peerId,
      hooks: (peer) => {
        hooks ??= new ProviderHooks({
          identity: peer.identity,
          store: peer.store,
          workDir,
          offer: () => this.offer,
          log: this.log.child('executor'),
          observations: (deal, epoch) => peer.observationsFor(deal, epoch),
          onActive: (deal) => peer.watchDeal(deal),
          appealWhenWorkloadRan: c.settings.appealWhenWorkloadRan,
        })
        return hooks
      },
      onEngineEvent: (_pair, e) => {
        if (e.type === 'duty-failed') this.log.warn('duty failed', { duty: e.duty.type, err: e.error })
        else if (e.type === 'error') this.log.warn('deal engine error', { what: e.what, err: e.error })
        else if (e.type === 'rejected') this.log.warn('entry refused by the deal reducer', { err: e.error })
        else if (e.type === 'entry') this.log.debug('entry', { kind: e.block.entry.kind, seq: e.block.entry.seq, origin: e.origin })
      },
    })
    await this.peer.node.register(new ProbeResponder(this.peer.node.libp2p, { identity: this.peer.identity, log: this.peer.node.log }))
    await this.#announce(credentials)

    const metrics = new Metrics('provider', this.peer.peerId)
    registerPeerMetrics(metrics, this.peer)
    this.control = new ControlServer({
      dataDir,
      port: c.control.port,
      log: this.log,
      metrics,
      fallback: createExplorerHandler({ source: storeSource(this.peer.store) }),
      info: { role: 'provider', peerId: this.peer.peerId },
    })
    registerPeerRoutes(this.control, this.peer, () => ({ role: 'provider', offer: this.offer }))
    await this.control.start()
  }

  async #announce(credentials: Credential[]): Promise<void> {
    const o = this.config.settings.offer
    if (credentials.length === 0) {
      // No credential from an issuer: present a self-issued one, which readers admit only if their policy says `self`.
      const now = Date.now()
      credentials.push(
        issueCredential(this.peer.identity, {
          subject: this.peer.peerId,
          roles: ['provider'],
          jurisdiction: o.jurisdiction,
          scope: {},
          notBefore: now - 60_000,
          notAfter: now + o.validForMs,
        }),
      )
    }
    const facts = await attestHardware()
    const hwClass = o.hardware.class === 'auto' ? facts.hardwareClass : o.hardware.class
    const body: OfferBody = {
      provider: this.peer.peerId,
      hardware: { class: hwClass, count: o.hardware.count, attestationSource: o.hardware.class === 'auto' ? facts.classSource : 'declared' },
      jurisdiction: o.jurisdiction,
      price: { perEpoch: o.pricePerEpoch, epochMs: o.epochMs },
      sla: o.sla,
      monitors: o.monitors,
      arbiters: o.arbiters,
      rails: o.rails,
      credentials,
      validUntil: Date.now() + o.validForMs,
      addresses: this.peer.node.multiaddrs().slice(0, 8),
    }
    this.offer = body
    const result = await this.peer.node.discovery.announce(signOffer(this.peer.identity, body))
    this.log.info('offer announced', { keys: result.keys, reached: result.reached, ms: Math.round(result.durationMs) })
  }

  async stop(): Promise<void> {
    await this.control?.stop()
    await this.peer?.stop()
  }
}
