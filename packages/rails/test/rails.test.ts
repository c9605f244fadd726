import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Identity, signEntry, toBlock } from '@tally/core'
import { afterEach, describe, expect, it } from 'vitest'
import { CommandRail, HttpRail, LedgerRail, MAX_DETAIL_BYTES, type RailRelease, railFromConfig, railOutcomeSchema, railResultFields } from '../src/index.ts'

const provider = Identity.fromSeed(new Uint8Array(32).fill(1))
const consumer = Identity.fromSeed(new Uint8Array(32).fill(2))
const pair = toBlock({ provider: provider.peerId, consumer: consumer.peerId }).cid
const deal = toBlock({ contract: 'gpu.h100 x1, 120 USD per epoch' }).cid

function release(cumulative = 360, delta = 120): RailRelease {
  const voucher = signEntry(consumer, {
    v: 1,
    pair,
    author: consumer.peerId,
    seq: 7,
    prev: deal,
    seen: null,
    time: 1_700_000_000_000,
    kind: 'voucher',
    body: { deal, cumulative: { amount: cumulative, asset: 'USD' } },
  })
  return {
    pair: pair.toString(),
    deal: deal.toString(),
    voucher: voucher.cid.toString(),
    cumulative: { amount: cumulative, asset: 'USD' },
    delta: { amount: delta, asset: 'USD' },
    payer: consumer.peerId,
    payee: provider.peerId,
    voucherBytesBase64: Buffer.from(voucher.bytes).toString('base64'),
  }
}

const node = process.execPath
const valid = (o: unknown): void => {
  expect(railOutcomeSchema.safeParse(o).success).toBe(true)
}

describe('LedgerRail', () => {
  it('settles in the ledger with the voucher CID as reference', async () => {
    const r = release()
    const outcome = await new LedgerRail().release(r)
    expect(outcome).toMatchObject({ rail: 'ledger', status: 'ok', reference: r.voucher })
    valid(outcome)
    expect(railResultFields(r, outcome)).toEqual({
      deal: r.deal,
      voucher: r.voucher,
      rail: 'ledger',
      status: 'ok',
      detail: outcome.detail,
      reference: r.voucher,
    })
  })

  it('records a malformed release as failed instead of throwing', async () => {
    const bad = [{ ...release(), voucher: 'not-a-cid' }, { ...release(), delta: { amount: 1, asset: 'EUR' } }, release(100, 200), null]
    for (const r of bad) {
      const outcome = await new LedgerRail().release(r as RailRelease)
      expect(outcome.status).toBe('failed')
      expect(outcome.detail).toMatch(/^invalid release/)
      valid(outcome)
    }
  })
})

describe('CommandRail', () => {
  it('passes the release on stdin and TALLY_* env, and takes the reference from stdout', async () => {
    const script = `let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);
      if(r.voucher!==process.env.TALLY_IDEMPOTENCY_KEY||process.env.TALLY_AMOUNT!=='120'||process.env.TALLY_ASSET!=='USD'||process.env.TALLY_CUMULATIVE_AMOUNT!=='360')process.exit(9);
      if(process.env.DAEMON_SECRET!==undefined)process.exit(8);
      console.log('txn-'+r.voucher.slice(-8));console.log('paid '+r.delta.amount+' '+r.delta.asset+' to '+process.env.TALLY_PAYEE.slice(0,8))})`
    process.env['DAEMON_SECRET'] = 'x'
    try {
      const r = release()
      const outcome = await new CommandRail({ command: [node, '-e', script], timeoutMs: 10_000, env: { BANK: 'demo' } }).release(r)
      expect(outcome).toEqual({
        rail: 'command',
        status: 'ok',
        reference: `txn-${r.voucher.slice(-8)}`,
        detail: `txn-${r.voucher.slice(-8)}\npaid 120 USD to ${provider.peerId.slice(0, 8)}`,
      })
      valid(outcome)
    } finally {
      delete process.env['DAEMON_SECRET']
    }
  })

  it('fails on a nonzero exit, keeping the program output as detail', async () => {
    const outcome = await new CommandRail({ command: [node, '-e', "console.error('insufficient funds'); process.exit(1)"], timeoutMs: 10_000 }).release(
      release(),
    )
    expect(outcome).toEqual({ rail: 'command', status: 'failed', detail: 'exit 1: insufficient funds', reference: null })
  })

  it('keeps no reference when the first line is not an identifier, and bounds the detail', async () => {
    const outcome = await new CommandRail({ command: [node, '-e', "console.log('<b>ok</b> ' + 'y'.repeat(5000))"], timeoutMs: 10_000, name: 'bank' }).release(
      release(),
    )
    expect(outcome.status).toBe('ok')
    expect(outcome.rail).toBe('bank')
    expect(outcome.reference).toBeNull()
    expect(Buffer.byteLength(outcome.detail)).toBeLessThanOrEqual(MAX_DETAIL_BYTES)
    valid(outcome)
  })

  // The grandchild holds the inherited pipes: 'close' arrives only if the whole group was killed.
  it('kills a program that runs past its timeout, with its children', async () => {
    const outcome = await new CommandRail({
      command: [node, '-e', "require('child_process').spawn(process.execPath,['-e','setInterval(()=>{},1000)'],{stdio:'inherit'}); setInterval(()=>{},1000)"],
      timeoutMs: 300,
    }).release(release())
    expect(outcome.status).toBe('failed')
    expect(outcome.detail).toBe('timed out after 300 ms')
  })

  it('reports a program that cannot be started as failed', async () => {
    const outcome = await new CommandRail({ command: ['/nonexistent/pay'], timeoutMs: 1000 }).release(release())
    expect(outcome.status).toBe('failed')
    expect(outcome.detail).toMatch(/^cannot run \/nonexistent\/pay/)
  })

  it('refuses bad configuration', () => {
    expect(() => new CommandRail({ command: [], timeoutMs: 1 })).toThrow(expect.objectContaining({ name: 'RailConfigError' }))
    expect(() => new CommandRail({ command: ['x'], timeoutMs: 0 })).toThrow(expect.objectContaining({ name: 'RailConfigError' }))
    expect(() => new CommandRail({ command: ['x'], timeoutMs: 1, name: 'Bad Name' })).toThrow(expect.objectContaining({ name: 'RailConfigError' }))
  })
})

describe('HttpRail', () => {
  let server: Server | undefined
  afterEach(async () => {
    if (server !== undefined) {
      server.closeAllConnections()
      await new Promise((r) => server!.close(r))
      server = undefined
    }
  })

  interface Seen {
    key: string | undefined
    auth: string | undefined
    body: RailRelease
  }
  async function serve(handler: (n: number, req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; seen: Seen[] }> {
    const seen: Seen[] = []
    server = createServer((req, res) => {
      let data = ''
      req.on('data', (c) => (data += c))
      req.on('end', () => {
        seen.push({ key: req.headers['idempotency-key'] as string | undefined, auth: req.headers.authorization, body: JSON.parse(data) as RailRelease })
        handler(seen.length, req, res)
      })
    })
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/pay`, seen }
  }
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }

  it('succeeds on 2xx with the reference from the response, sending the idempotency key', async () => {
    const { url, seen } = await serve((_, __, res) => json(res, 201, { reference: 'pi_3Nabc123', status: 'succeeded' }))
    const r = release()
    const outcome = await new HttpRail({ url, timeoutMs: 5000, headers: { authorization: 'Bearer t0k' } }).release(r)
    expect(outcome).toMatchObject({ rail: 'http', status: 'ok', reference: 'pi_3Nabc123' })
    expect(outcome.detail).toMatch(/^HTTP 201: /)
    valid(outcome)
    expect(seen).toEqual([{ key: r.voucher, auth: 'Bearer t0k', body: r }])
  })

  it('fails at once on 4xx, without retrying', async () => {
    const { url, seen } = await serve((_, __, res) => json(res, 402, { error: 'card declined' }))
    const outcome = await new HttpRail({ url, timeoutMs: 5000, retries: 3, backoffMs: 10 }).release(release())
    expect(outcome).toEqual({ rail: 'http', status: 'failed', reference: null, detail: 'HTTP 402: {"error":"card declined"} (after 1 attempt)' })
    expect(seen).toHaveLength(1)
  })

  it('retries 5xx with the same idempotency key until it succeeds', async () => {
    const { url, seen } = await serve((n, __, res) => (n < 3 ? json(res, 503, { error: 'busy' }) : json(res, 200, { reference: 'tx-42' })))
    const r = release()
    const outcome = await new HttpRail({ url, timeoutMs: 5000, retries: 3, backoffMs: 10 }).release(r)
    expect(outcome).toMatchObject({ status: 'ok', reference: 'tx-42' })
    expect(seen.map((s) => s.key)).toEqual([r.voucher, r.voucher, r.voucher])
  })

  it('gives up after the retries on persistent 5xx', async () => {
    const { url, seen } = await serve((_, __, res) => json(res, 500, { error: 'down' }))
    const outcome = await new HttpRail({ url, timeoutMs: 5000, retries: 2, backoffMs: 10 }).release(release())
    expect(outcome).toMatchObject({ status: 'failed', detail: 'HTTP 500: {"error":"down"} (after 3 attempts)' })
    expect(seen).toHaveLength(3)
  })

  it('times out a server that never answers, retrying with the same key', async () => {
    const { url, seen } = await serve(() => {
      // never respond
    })
    const r = release()
    const outcome = await new HttpRail({ url, timeoutMs: 200, retries: 1, backoffMs: 10 }).release(r)
    expect(outcome).toEqual({ rail: 'http', status: 'failed', reference: null, detail: 'timed out after 200 ms (after 2 attempts)' })
    expect(seen.map((s) => s.key)).toEqual([r.voucher, r.voucher])
  })

  it('reports an unreachable endpoint as failed', async () => {
    const { url } = await serve(() => {})
    server!.closeAllConnections()
    await new Promise((r) => server!.close(r))
    server = undefined
    const outcome = await new HttpRail({ url, timeoutMs: 1000, retries: 1, backoffMs: 10 }).release(release())
    expect(outcome.status).toBe('failed')
    expect(outcome.detail).toMatch(/ECONNREFUSED.*\(after 2 attempts\)$/)
  })

  it('ignores a reference that is not an identifier', async () => {
    const { url } = await serve((_, __, res) => json(res, 200, { reference: '<script>alert(1)</script>' }))
    const outcome = await new HttpRail({ url, timeoutMs: 5000 }).release(release())
    expect(outcome).toMatchObject({ status: 'ok', reference: null })
  })

  it('refuses bad configuration', () => {
    const name = expect.objectContaining({ name: 'RailConfigError' })
    expect(() => new HttpRail({ url: 'ftp://x', timeoutMs: 1 })).toThrow(name)
    expect(() => new HttpRail({ url: 'not a url', timeoutMs: 1 })).toThrow(name)
    expect(() => new HttpRail({ url: 'http://127.0.0.1/', timeoutMs: 1, retries: -1 })).toThrow(name)
  })
})

describe('railFromConfig', () => {
  it('builds each rail kind from configuration and refuses bad config', async () => {
    expect(railFromConfig({ kind: 'ledger' }).name).toBe('ledger')
    const cmd = railFromConfig({ kind: 'command', command: [node, '-e', "console.log('ref-1')"], timeoutMs: 5000, name: 'payroll' })
    expect(await cmd.release(release())).toMatchObject({ rail: 'payroll', status: 'ok', reference: 'ref-1' })
    expect(railFromConfig({ kind: 'http', url: 'https://pay.example/tally', timeoutMs: 1000 }).name).toBe('http')
    expect(() => railFromConfig({ kind: 'wire' })).toThrow(expect.objectContaining({ name: 'SchemaError' }))
    expect(() => railFromConfig({ kind: 'http', url: 'file:///etc/passwd', timeoutMs: 1000 })).toThrow(expect.objectContaining({ name: 'RailConfigError' }))
  })
})
