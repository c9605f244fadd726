export type Level = 'debug' | 'info' | 'warn' | 'error'

/** One structured event: a name and its fields. */
export type EventLog = (level: Level, event: string, fields?: Record<string, unknown>) => void

function plain(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message }
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  return value
}

/** Write each event as one JSON line (`{"time","level","event",…}`) to `out` (stderr by default). */
export function jsonLog(out: { write(line: string): unknown } = process.stderr, minLevel: Level = 'info'): EventLog {
  const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 }
  return (level, event, fields = {}) => {
    if (order[level] < order[minLevel]) return
    const line = { time: new Date().toISOString(), level, event, ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, plain(v)])) }
    out.write(`${JSON.stringify(line, (_k, v: unknown) => plain(v))}\n`)
  }
}

/** Discards every event (library use without logs). */
export const silentLog: EventLog = () => {}
