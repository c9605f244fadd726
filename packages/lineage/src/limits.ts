/**
 * The physical limits the pair log's benchmarks are judged against,
 * measured on the machine at hand: a synced LevelDB put, and hashing plus
 * generic DAG-CBOR decoding of blocks (the floor of any verifier).
 */
import { hash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { Level } from 'level'
import { scanCar } from './car-scan.ts'

/** LevelDB puts with sync:true, one at a time, per second (a fresh database in `dir`). */
export async function measureSyncPutRate(dir: string, n: number, valueBytes = 400): Promise<number> {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
  await db.open()
  try {
    const value = new Uint8Array(valueBytes).fill(7)
    for (let i = 0; i < 50; i++) await db.put(`w${i}`, value, { sync: true })
    const t = performance.now()
    for (let i = 0; i < n; i++) await db.put(`k${i}`, value, { sync: true })
    return n / ((performance.now() - t) / 1000)
  } finally {
    await db.close()
  }
}

/** SHA-256 + @ipld/dag-cbor decode of every block of a CAR, blocks per second. */
export function measureHashDecodeRate(car: Uint8Array): number {
  const blocks: Uint8Array[] = []
  scanCar(
    car,
    (b) => {
      blocks.push(car.subarray(b.dataOffset, b.dataOffset + b.dataLength))
    },
    () => undefined,
  )
  for (let i = 0; i < Math.min(2000, blocks.length); i++) dagCbor.decode(blocks[i]!)
  const t = performance.now()
  for (const b of blocks) {
    hash('sha256', b, 'buffer')
    dagCbor.decode(b)
  }
  return blocks.length / ((performance.now() - t) / 1000)
}
