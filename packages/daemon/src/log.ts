/**
 * Structured logs: one JSON object per line on stderr, with time, level,
 * component and message, so `journalctl -o cat | jq` works. `pretty`
 * prints a short human line instead (for a terminal).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export interface Log {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
  child(component: string): Log
}

export interface LogOptions {
  level?: LogLevel
  pretty?: boolean
  write?: (line: string) => void
}

function safe(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message }
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`
  if (typeof value === 'bigint') return value.toString()
  if (value !== null && typeof value === 'object' && (value as { asCID?: unknown }).asCID === value) return String(value)
  return value
}

export function createLog(component: string, opts: LogOptions = {}): Log {
  const min = ORDER[opts.level ?? 'info']
  const write = opts.write ?? ((line: string) => process.stderr.write(line))
  const emit = (level: LogLevel, msg: string, fields: Record<string, unknown> = {}) => {
    if (ORDER[level] < min) return
    if (opts.pretty === true) {
      const extra = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(safe(v))}`)
        .join(' ')
      write(`${new Date().toISOString().slice(11, 23)} ${level.padEnd(5)} ${component}: ${msg}${extra ? ` ${extra}` : ''}\n`)
      return
    }
    const record: Record<string, unknown> = { t: new Date().toISOString(), level, component, msg }
    for (const [k, v] of Object.entries(fields)) record[k] = safe(v)
    write(`${JSON.stringify(record)}\n`)
  }
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (sub) => createLog(`${component}:${sub}`, opts),
  }
}
