import '@tally/core'
console.log('core maxrss', process.resourceUsage().maxRSS / 1024)
const m = await import('./src/index.ts')
console.log('lineage maxrss', process.resourceUsage().maxRSS / 1024, Object.keys(m).length)
