import { checkRelease, type Rail, type RailOutcome, type RailRelease } from './rail.ts'

/**
 * The embedded default: the countersigned vouchers in the pair log are
 * the settlement (each side can prove the running balance), so releasing
 * moves nothing and succeeds with the voucher CID as the reference.
 */
export class LedgerRail implements Rail {
  readonly name = 'ledger'

  async release(release: RailRelease): Promise<RailOutcome> {
    const checked = checkRelease(this.name, release)
    if (!checked.ok) return checked.outcome
    const r = checked.release
    return {
      rail: this.name,
      status: 'ok',
      detail: `settled in the pair ledger: cumulative ${r.cumulative.amount} ${r.cumulative.asset} (+${r.delta.amount})`,
      reference: r.voucher,
    }
  }
}
