import { readFileSync } from 'node:fs'
import { verifyExport } from './src/index.ts'
const car = new Uint8Array(readFileSync('/tmp/l20k.car'))
for (let r = 0; r < 8; r++) await verifyExport(car)
