/** Pieces shared by the demo and the local network: entry points, loopback settings, identities, configs. */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadOrCreateIdentity } from '@tally/core'
import { stringify } from 'yaml'
import type { Ready } from './processes.ts'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

export const entries = {
  node: join(root, 'packages/node/src/bin/tally-node.ts'),
  provider: join(root, 'apps/provider/src/main.ts'),
  monitor: join(root, 'apps/monitor/src/main.ts'),
  arbiter: join(root, 'apps/arbiter/src/main.ts'),
  cli: join(root, 'apps/cli/src/main.ts'),
}

export const local = { allowPrivateAddresses: true, allowList: ['/ip4/127.0.0.0/ipcidr/8'], gossipIpColocationWhitelist: ['127.0.0.0/8'] }
export const listen = ['/ip4/127.0.0.1/tcp/0']

/** A free loopback port, so a restarted provider comes back where monitors and peers look for it. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net')
  return new Promise((resolvePort, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolvePort(port))
    })
  })
}

export async function prepare(out: string, name: string): Promise<{ dir: string; peerId: string }> {
  const dir = join(out, name)
  await mkdir(dir, { recursive: true })
  const { identity } = await loadOrCreateIdentity(join(dir, 'data'))
  return { dir, peerId: identity.peerId }
}

export async function writeConfig(dir: string, config: unknown): Promise<string> {
  const file = join(dir, 'config.yaml')
  await writeFile(file, stringify(config))
  return file
}

export function dialable(r: Ready): string {
  return r.multiaddrs.find((a) => a.startsWith('/ip4/127.0.0.1/')) ?? r.multiaddrs[0]!
}
