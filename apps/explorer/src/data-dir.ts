import { cp, mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LevelStore } from '@tally/lineage'
import { DataDirError } from './errors.ts'
import type { ExplorerSource } from './source.ts'
import { storeSource } from './store-source.ts'

async function isLevelDb(dir: string): Promise<boolean> {
  try {
    return (await stat(join(dir, 'CURRENT'))).isFile()
  } catch {
    return false
  }
}

/** Where the daemons keep their store inside the data directory. */
export const STORE_SUBDIR = 'store'

/** The LevelDB directory of a node: `<dir>/store`, `dir` itself, or the one subdirectory of it that holds one. */
export async function findStoreDir(dir: string): Promise<string> {
  if (await isLevelDb(join(dir, STORE_SUBDIR))) return join(dir, STORE_SUBDIR)
  if (await isLevelDb(dir)) return dir
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    throw new DataDirError(`cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { dir })
  }
  const found: string[] = []
  for (const name of names.sort()) if (await isLevelDb(join(dir, name))) found.push(join(dir, name))
  if (found.length === 1) return found[0] as string
  if (found.length === 0) throw new DataDirError(`${dir} holds no node store (no LevelDB found)`, { dir })
  throw new DataDirError(`${dir} holds several LevelDB stores (${found.join(', ')}); name one`, { dir })
}

export interface OpenedDataDir {
  source: ExplorerSource
  /** The LevelDB directory read. */
  storeDir: string
  /** True when a running node held the store, so the explorer reads a copy taken at start. */
  snapshot: boolean
}

/**
 * Open a node's data directory for the explorer. LevelDB admits one
 * process at a time: when a running daemon holds the store, the explorer
 * reads a copy taken now (LevelDB recovers a copy as it would after a
 * crash) and says so; the daemon's own explorer shows live data.
 */
export async function openDataDir(dir: string): Promise<OpenedDataDir> {
  const storeDir = await findStoreDir(dir)
  try {
    const store = await LevelStore.open(storeDir)
    return { source: storeSource(store, { onClose: () => store.close() }), storeDir, snapshot: false }
  } catch (err) {
    if (!/lock/i.test(String((err as Error).message))) throw err
  }
  const copy = await mkdtemp(join(tmpdir(), 'tally-explorer-'))
  try {
    await cp(storeDir, copy, { recursive: true, filter: (src) => !src.endsWith('/LOCK') })
    const store = await LevelStore.open(copy)
    const onClose = async () => {
      await store.close()
      await rm(copy, { recursive: true, force: true })
    }
    return { source: storeSource(store, { onClose }), storeDir, snapshot: true }
  } catch (err) {
    await rm(copy, { recursive: true, force: true })
    throw new DataDirError(`cannot read a copy of the store in ${storeDir}: ${(err as Error).message}`, { dir: storeDir }, { cause: err })
  }
}
