/** One benchmark figure, with the physical limit it was measured against in the same run. */
export interface BenchResult {
  name: string
  value: number
  unit: string
  limit: { name: string; value: number; unit: string }
  /** Optional target from the issue, for the table. */
  target?: { op: '>=' | '<='; value: number }
}
