import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { importCar, LevelStore } from '@tally/lineage'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { carSource, createExplorerServer, type ExplorerServer, openDataDir, type PairDetail, storeSource } from '../src/index.ts'
import { buildScenario, EPOCHS, entryCounts, exportBytes, PRICE, RULING_AWARD, type Scenario } from './scenario.ts'

let dir: string
let scenario: Scenario
let car: string
let counts: { provider: number; consumer: number }

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tally-explorer-test-'))
  scenario = await buildScenario()
  counts = entryCounts(scenario)
  car = join(dir, 'pair.car')
  await writeFile(car, await exportBytes(scenario))
})

afterAll(async () => {
  await scenario?.close()
  await rm(dir, { recursive: true, force: true })
})

/** What both sources must agree on, without where it came from. */
function comparable(d: PairDetail): unknown {
  return { ...d, origin: '', verification: { ...d.verification, checked: '' } }
}

describe('sources', () => {
  it('carSource shows the pair, both chains, the deal, balances and monitors', async () => {
    const source = carSource([car])
    const pairs = await source.pairs()
    expect(pairs).toHaveLength(1)
    const p = pairs[0]!
    expect(p.provider).toBe(scenario.provider.peerId)
    expect(p.consumer).toBe(scenario.consumer.peerId)
    expect(p.entries).toEqual(counts)
    expect(p.ok).toBe(true)

    const d = (await source.pair(p.id))!
    expect(d.verification).toMatchObject({ ok: true, problems: [] })
    expect(d.timeline).toHaveLength(counts.provider + counts.consumer)
    // Timeline order respects every seen link.
    const placed = new Set<string>()
    for (const e of d.timeline) {
      if (e.seen !== null) expect(placed.has(e.seen.cid)).toBe(true)
      placed.add(e.cid)
    }
    expect(d.heads.provider?.seq).toBe(counts.provider)

    expect(d.dealList).toHaveLength(1)
    const deal = d.dealList[0]!
    expect(deal.id).toBe(scenario.deal.toString())
    expect(deal.status).toBe('closed')
    expect(deal.epochs.map((e) => e.evaluation?.verdict)).toEqual(scenario.verdicts)
    expect(deal.epochs).toHaveLength(EPOCHS)
    expect(deal.counts).toEqual({ performed: 2, notPerformed: 1, disputed: 1, insufficient: 1 })
    // The observation both parties attached counts once.
    expect(deal.epochs[0]!.observations).toBe(3)
    expect(deal.evidence).toEqual({ usage: EPOCHS, observations: scenario.observations.reduce((a, b) => a + b, 0), foreign: 0 })
    expect(deal.paid).toBe(2 * PRICE + RULING_AWARD)
    expect(deal.vouchers.map((v) => v.amount)).toEqual([2 * PRICE, 2 * PRICE + RULING_AWARD])
    expect(deal.vouchers.every((v) => v.ack === 'acknowledged')).toBe(true)
    expect(deal.disputes).toHaveLength(1)
    const dispute = deal.disputes[0]!
    expect(dispute).toMatchObject({ by: 'auto', epochs: [2], status: 'final' })
    expect(dispute.rulings[0]).toMatchObject({ arbiter: scenario.arbiter.peerId, toProvider: RULING_AWARD })
    expect(dispute.rulings[0]!.reasons).toContain('half the price')
    expect(dispute.final).toBe(dispute.rulings[0]!.cid)
    expect(deal.terms?.rule.monitors.map((m) => m.peer)).toEqual(scenario.monitors.map((m) => m.peerId))

    expect(d.balances['USD']).toMatchObject({ paid: 2 * PRICE + RULING_AWARD, acknowledged: 2 * PRICE + RULING_AWARD, held: PRICE, collateralBonded: 2000 })

    expect(d.monitors.map((m) => m.monitor).sort()).toEqual(scenario.monitors.map((m) => m.peerId).sort())
    for (const m of d.monitors) {
      const i = scenario.monitors.findIndex((x) => x.peerId === m.monitor)
      expect(m.points).toHaveLength(scenario.observations[i]!)
      expect(m.weight).toBe(1)
      expect(m.points.map((pt) => pt.start)).toEqual([...m.points.map((pt) => pt.start)].sort((a, b) => a - b))
    }
    const first = d.monitors.find((m) => m.monitor === scenario.monitors[0]!.peerId)!
    expect(first.points[0]!.attachedBy.sort()).toEqual(['consumer', 'provider'])
    expect(first.points[2]!.availabilityBp).toBe(4000)

    const kinds = new Set(d.timeline.map((e) => e.kind))
    for (const k of ['open', 'proposal', 'acceptance', 'observation', 'usage', 'evaluation', 'voucher', 'ack', 'ruling', 'close', 'checkpoint'])
      expect(kinds).toContain(k)
    expect(d.timeline.find((e) => e.kind === 'evaluation' && e.summary.includes('disputed'))).toBeDefined()
    // JSON carries CIDs as strings, nothing else.
    expect(JSON.stringify(d)).not.toContain('"/"')
  })

  it('storeSource over either party’s store shows the same record as the export', async () => {
    const fromCar = (await carSource([car]).pairs())[0]!
    const carDetail = (await carSource([car]).pair(fromCar.id))!
    for (const role of ['provider', 'consumer'] as const) {
      const source = storeSource(scenario.stores[role])
      const pairs = await source.pairs()
      expect(pairs.map((p) => p.id)).toEqual([fromCar.id])
      const d = (await source.pair(fromCar.id))!
      expect(d.origin).toBe('store')
      expect(comparable(d)).toEqual(comparable(carDetail))
    }
    expect(await storeSource(scenario.stores.consumer).pair('bafyreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')).toBeUndefined()
  })

  it('a live store view follows new entries', async () => {
    const source = storeSource(scenario.stores.consumer)
    const id = (await source.pairs())[0]!.id
    const before = (await source.pair(id))!
    expect(await source.pair(id)).toBe(before)
    const note = await scenario.logs.consumer.append('note', 'explorer was here', { time: before.lastTime! + 1000 })
    const after = (await source.pair(id))!
    expect(after.entries.consumer).toBe(before.entries.consumer + 1)
    expect(after.timeline.at(-1)).toMatchObject({ cid: note.cid.toString(), kind: 'note', summary: 'note: explorer was here' })
  })

  it('a tampered export still shows, with the problem named', async () => {
    const bytes = new Uint8Array(await readFile(car))
    // Flip a byte inside the body of an entry near the middle of the file.
    bytes[Math.floor(bytes.byteLength / 2)]! ^= 0x01
    const bad = join(dir, 'tampered.car')
    await writeFile(bad, bytes)
    const source = carSource([bad])
    const [p] = await source.pairs()
    expect(p).toBeDefined()
    expect(p!.ok).toBe(false)
    const d = (await source.pair(p!.id))!
    expect(d.verification.ok).toBe(false)
    expect(d.verification.problems.length).toBeGreaterThan(0)
    expect(d.verification.problems[0]!.layer).toBe('lineage')
    expect(d.entries.provider + d.entries.consumer).toBeGreaterThan(0)
  })

  it('an entry the deal reducer refuses is flagged in the timeline and in verification', async () => {
    const s = await buildScenario({ illegalVoucher: true })
    try {
      const file = join(dir, 'illegal.car')
      await writeFile(file, await exportBytes(s))
      const source = carSource([file])
      const [p] = await source.pairs()
      const d = (await source.pair(p!.id))!
      expect(d.ok).toBe(false)
      const problem = d.verification.problems.find((x) => x.layer === 'deal')
      expect(problem).toMatchObject({ role: 'consumer', kind: 'voucher' })
      const refused = d.timeline.find((e) => e.refused !== null)
      expect(refused).toMatchObject({ kind: 'voucher', refused: problem!.code, cid: problem!.cid })
      // The refused voucher changed nothing.
      expect(d.dealList[0]!.paid).toBe(2 * PRICE + RULING_AWARD)
    } finally {
      await s.close()
    }
  })

  it('a file that is not an export is an ExportReadError', async () => {
    const junk = join(dir, 'junk.car')
    await writeFile(junk, 'not a car file at all')
    await expect(carSource([junk]).pairs()).rejects.toMatchObject({ name: 'ExportReadError' })
    await expect(carSource([join(dir, 'missing.car')]).pairs()).rejects.toMatchObject({ name: 'ExportReadError' })
  })

  it('openDataDir reads a LevelDB data directory, and a copy when a node holds it', async () => {
    const dataDir = join(dir, 'node')
    const store = await LevelStore.open(join(dataDir, 'store'))
    await importCar(store, new Uint8Array(await readFile(car)))
    // The node is running: LevelDB's lock is held.
    const held = await openDataDir(dataDir)
    try {
      expect(held.snapshot).toBe(true)
      const pairs = await held.source.pairs()
      expect(pairs).toHaveLength(1)
      expect(pairs[0]!.entries).toEqual(counts)
    } finally {
      await held.source.close?.()
    }
    await store.close()
    const free = await openDataDir(dataDir)
    try {
      expect(free.snapshot).toBe(false)
      expect(free.storeDir).toBe(join(dataDir, 'store'))
      expect((await free.source.pairs())[0]!.ok).toBe(true)
    } finally {
      await free.source.close?.()
    }
    await expect(openDataDir(join(dir, 'nowhere'))).rejects.toMatchObject({ name: 'DataDirError' })
    await expect(openDataDir(dir)).rejects.toMatchObject({ name: 'DataDirError' })
  })
})

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

function get(server: ExplorerServer, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

describe('HTTP server', () => {
  let server: ExplorerServer
  let id: string

  beforeAll(async () => {
    server = await createExplorerServer({ source: carSource([car]), host: '127.0.0.1', port: 0 })
    id = (await carSource([car]).pairs())[0]!.id
  })

  afterAll(async () => {
    await server?.close()
  })

  it('binds 127.0.0.1 and serves the page with a strict CSP', async () => {
    expect(server.host).toBe('127.0.0.1')
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`)
    const page = await get(server, '/')
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    expect(page.headers['content-security-policy']).toContain("script-src 'self'")
    expect(page.body).toContain('<script type="module" src="/app.js">')
    for (const asset of ['/app.js', '/plot.js', '/style.css', '/favicon.svg']) expect((await get(server, asset)).status).toBe(200)
    expect((await get(server, '/app.js')).headers['content-type']).toMatch(/^text\/javascript/)
  })

  it('serves the pairs and one pair as JSON', async () => {
    const list = await get(server, '/api/pairs')
    expect(list.status).toBe(200)
    expect(list.headers['content-type']).toMatch(/^application\/json/)
    const pairs = JSON.parse(list.body).pairs
    expect(pairs.map((p: { id: string }) => p.id)).toEqual([id])
    const one = await get(server, `/api/pairs/${id}`)
    expect(one.status).toBe(200)
    const d = JSON.parse(one.body) as PairDetail
    expect(d.provider).toBe(scenario.provider.peerId)
    expect(typeof d.dealList[0]!.id).toBe('string')
    const head = await get(server, `/api/pairs/${id}`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.body).toBe('')
  })

  it('answers 404 for unknown pairs and paths, and never reads files by path', async () => {
    expect((await get(server, '/api/pairs/bafyreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')).status).toBe(404)
    expect((await get(server, '/api/pairs/not-a-cid')).status).toBe(404)
    expect((await get(server, '/api/pairs/')).status).toBe(404)
    for (const path of ['/nope', '/../package.json', '/%2e%2e/package.json', '/web/app.js', '/..%2f..%2fetc%2fpasswd', '/server.ts', '//etc/passwd']) {
      const r = await get(server, path)
      expect(r.status, path).toBe(404)
      expect(JSON.parse(r.body).error).toBe('NotFound')
    }
  })

  it('refuses other methods, bodies, long targets and foreign Host headers', async () => {
    const post = await get(server, '/api/pairs', { method: 'POST' })
    expect(post.status).toBe(405)
    expect(post.headers['allow']).toBe('GET, HEAD')
    expect((await get(server, '/', { headers: { 'content-length': '5' }, body: 'hello' })).status).toBe(413)
    expect((await get(server, `/${'a'.repeat(3000)}`)).status).toBe(414)
    expect((await get(server, '/api/pairs', { headers: { host: 'evil.example:80' } })).status).toBe(421)
    expect((await get(server, '/api/pairs', { headers: { host: `localhost:${server.port}` } })).status).toBe(200)
  })

  it('a failing source is a 500 with the error, and the server keeps serving', async () => {
    const broken = await createExplorerServer({
      source: {
        pairs: () => Promise.reject(new RangeError('store went away')),
        pair: () => Promise.resolve(undefined),
      },
    })
    try {
      const r = await get(broken, '/api/pairs')
      expect(r.status).toBe(500)
      expect(JSON.parse(r.body)).toEqual({ error: 'RangeError', message: 'store went away' })
      expect((await get(broken, '/')).status).toBe(200)
    } finally {
      await broken.close()
    }
  })

  it('a port in use is a ServerStartError', async () => {
    await expect(createExplorerServer({ source: carSource([car]), port: server.port })).rejects.toMatchObject({ name: 'ServerStartError' })
  })
})
