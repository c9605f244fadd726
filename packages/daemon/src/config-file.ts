import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, resolve } from 'node:path'
import { parseWith, SchemaError } from '@tally/core'
import { parse as parseYaml } from 'yaml'
import type { z } from 'zod'
import { ConfigError } from './errors.ts'

/**
 * Read a YAML (or JSON, which is YAML) config file and validate it.
 * Relative paths in fields listed in `pathFields` resolve against the
 * config file's directory, as systemd units and kubo configs expect.
 */
export async function loadConfigFile<T>(file: string, schema: z.ZodType<T>, what: string): Promise<T> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read ${what} config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file })
  }
  let raw: unknown
  try {
    raw = parseYaml(text, { maxAliasCount: 100 })
  } catch (err) {
    throw new ConfigError(`${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, { file })
  }
  try {
    return parseWith(schema, raw ?? {}, `${what} config ${file}`)
  } catch (err) {
    if (err instanceof SchemaError) throw new ConfigError(err.message, { file })
    throw err
  }
}

/** Resolve `path` against the directory of `configFile` unless absolute. */
export function relativeTo(configFile: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dirname(configFile), path)
}
