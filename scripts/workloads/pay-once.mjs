// A stand-in for the user's own payment system, driven by Tally's command
// rail: pays each release once, keyed by its idempotency key (the voucher
// CID). Usage: pay-once.mjs <dir>. Each payment is a file <dir>/paid/<key>
// created exclusively and fsynced, so a release asked for twice (the rail
// retries after a crash) is refused as already paid; every call is also
// appended to <dir>/calls.jsonl. Prints the payment reference on stdout.
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2]
const key = process.env.TALLY_IDEMPOTENCY_KEY ?? ''
if (dir === undefined || !/^[a-z0-9]{20,100}$/.test(key)) {
  process.stderr.write('usage: TALLY_IDEMPOTENCY_KEY=<voucher cid> pay-once.mjs <dir>\n')
  process.exit(2)
}
mkdirSync(join(dir, 'paid'), { recursive: true })
const record = {
  key,
  deal: process.env.TALLY_DEAL,
  amount: Number(process.env.TALLY_AMOUNT),
  cumulative: Number(process.env.TALLY_CUMULATIVE_AMOUNT),
  asset: process.env.TALLY_ASSET,
  at: Date.now(),
}
const append = (file, line) => {
  const fd = openSync(file, 'a')
  writeSync(fd, `${line}\n`)
  fsyncSync(fd)
  closeSync(fd)
}
let fresh = true
try {
  const fd = openSync(join(dir, 'paid', key), 'wx')
  writeSync(fd, JSON.stringify(record))
  fsyncSync(fd)
  closeSync(fd)
  const d = openSync(join(dir, 'paid'), 'r')
  fsyncSync(d)
  closeSync(d)
} catch (err) {
  if (err.code !== 'EEXIST') throw err
  fresh = false
}
append(join(dir, 'calls.jsonl'), JSON.stringify({ ...record, fresh }))
process.stdout.write(`pay-${key.slice(-12)}\n`)
