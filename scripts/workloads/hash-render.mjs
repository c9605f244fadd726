// A small CPU workload for demos and tests: "renders" frames by hashing,
// printing one line per 20 frames, until its wall-time budget (argv[2], ms)
// runs out. Writes stop if stdout goes away (the daemon that ran it died).
import { createHash } from 'node:crypto'

const budgetMs = Number(process.argv[2] ?? 10_000)
const end = Date.now() + budgetMs
let frame = 0
let h = Buffer.alloc(32)
process.stdout.on('error', () => {})
const timer = setInterval(() => {
  for (let i = 0; i < 5_000; i++) h = createHash('sha256').update(h).digest()
  frame++
  if (frame % 20 === 0) process.stdout.write(`frame ${frame} ${h.toString('hex').slice(0, 16)}\n`)
  if (Date.now() >= end) {
    clearInterval(timer)
    process.stdout.write(`done after ${frame} frames\n`)
  }
}, 50)
