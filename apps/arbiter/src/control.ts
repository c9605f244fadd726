import { ControlApiError, type ControlServer } from '@tally/daemon'
import type { Arbiter } from './arbiter.ts'

/**
 * The arbiter's control API (token-guarded, 127.0.0.1):
 * GET /v1/status, GET /v1/cases, GET /v1/cases/:id, GET /v1/cases/:id/ruling (DAG-CBOR).
 */
export function registerControlRoutes(control: ControlServer, arbiter: Arbiter, started: number): void {
  control.route('GET', '/v1/status', () => ({
    role: 'arbiter',
    ...arbiter.status(),
    multiaddrs: arbiter.node.multiaddrs(),
    connections: arbiter.node.libp2p.getConnections().length,
    uptimeMs: Date.now() - started,
  }))
  control.route('GET', '/v1/cases', () => ({ cases: arbiter.store.list() }))
  control.route('GET', '/v1/cases/:id', async ({ params }) => {
    const detail = await arbiter.caseDetail(params['id'] ?? '')
    if (detail === undefined) throw new ControlApiError(`no case ${params['id']}`, 404)
    return detail
  })
  control.route('GET', '/v1/cases/:id/ruling', async ({ params }) => {
    const id = params['id'] ?? ''
    const bytes = await arbiter.store.readFile(id, 'ruling.cbor')
    if (bytes === undefined) throw new ControlApiError(`case ${id} has no ruling`, 404)
    return { contentType: 'application/vnd.ipld.dag-cbor', bytes, filename: `ruling-${id}.cbor` }
  })
}
