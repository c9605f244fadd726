import { LevelStore } from '../src/store-level.ts'
import { MemoryStore } from '../src/store-memory.ts'
import type { Store } from '../src/store.ts'
import { tempDir } from './helpers.ts'
import { storeCompliance } from './store-compliance.ts'

storeCompliance({ name: 'MemoryStore', create: async () => new MemoryStore() })

let removers: (() => Promise<void>)[] = []
storeCompliance({
  name: 'LevelStore',
  async create() {
    const t = await tempDir()
    removers.push(t.remove)
    return LevelStore.open(t.dir)
  },
  async reopen(store: Store) {
    const dir = (store as LevelStore).dir
    await store.close()
    return LevelStore.open(dir)
  },
  async cleanup() {
    const r = removers
    removers = []
    for (const f of r) await f()
  },
})
