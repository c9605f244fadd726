/**
 * The explorer in a real headless Chromium (Debian's package, driven by
 * playwright-core): a real pair log exported to CAR, served by carSource,
 * the page opened, the pair clicked, the content and a screenshot checked.
 */
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { carSource, createExplorerServer, type ExplorerServer } from '../src/index.ts'
import { buildScenario, EPOCHS, entryCounts, exportBytes, type Scenario } from './scenario.ts'

const CHROMIUM = process.env['TALLY_CHROMIUM'] ?? '/usr/bin/chromium'
const haveChromium = existsSync(CHROMIUM)
if (!haveChromium) process.stderr.write(`explorer browser test skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)\n`)

describe.skipIf(!haveChromium)(`explorer in headless Chromium (${CHROMIUM})`, () => {
  let dir: string
  let scenario: Scenario
  let server: ExplorerServer
  let context: BrowserContext
  let page: Page
  let counts: { provider: number; consumer: number }
  const pageErrors: string[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tally-explorer-browser-'))
    scenario = await buildScenario()
    counts = entryCounts(scenario)
    const car = join(dir, 'pair.car')
    await writeFile(car, await exportBytes(scenario))
    server = await createExplorerServer({ source: carSource([car]), host: '127.0.0.1', port: 0 })
    context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1400, height: 1000 },
      offline: false,
    })
    page = context.pages()[0] ?? (await context.newPage())
    page.on('pageerror', (err) => pageErrors.push(err.message))
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text())
    })
    // Nothing but the explorer itself may be fetched: the page works with no network.
    await context.route('**/*', (route) => (route.request().url().startsWith(server.url) ? route.continue() : route.abort()))
  })

  afterAll(async () => {
    await context?.close()
    await server?.close()
    await scenario?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('lists the pair and shows its record when clicked', async () => {
    await page.goto(server.url)
    const link = page.locator('a.pair-link')
    await expect.poll(() => link.count()).toBe(1)
    await link.click()
    await page.waitForSelector('main[data-loaded]')

    expect(await page.locator('code.peer[data-role=provider]').textContent()).toBe(scenario.provider.peerId)
    expect(await page.locator('code.peer[data-role=consumer]').textContent()).toBe(scenario.consumer.peerId)
    expect(await page.locator('.entry-count[data-role=provider]').textContent()).toBe(`${counts.provider} entries`)
    expect(await page.locator('.entry-count[data-role=consumer]').textContent()).toBe(`${counts.consumer} entries`)
    expect(await page.locator('#verification').getAttribute('class')).toContain('ok')

    // The epochs table carries one verdict badge per epoch, in order.
    const verdicts = await page.locator('table.epochs .verdict').allTextContents()
    expect(verdicts).toEqual(scenario.verdicts)
    expect(verdicts).toHaveLength(EPOCHS)
    expect(await page.locator('.verdict[data-verdict=performed]').count()).toBeGreaterThan(0)

    expect(await page.locator('table.vouchers tbody tr').count()).toBe(2)
    expect(await page.locator('.dispute .status').first().textContent()).toBe('final')
    expect(await page.locator('.ruling').first().textContent()).toContain('half the price')
    expect(await page.locator('table.balances').textContent()).toContain('USD')

    // Timeline: every entry of both chains, in its party's column, with seen links drawn.
    expect(await page.locator('.timeline .entry').count()).toBe(counts.provider + counts.consumer)
    expect(await page.locator('.timeline .entry-provider').count()).toBe(counts.provider)
    await expect.poll(() => page.locator('.timeline-links path').count()).toBeGreaterThan(5)

    // One card per monitor, each with two plots whose points are the observations.
    const monitors = page.locator('.monitor')
    expect(await monitors.count()).toBe(scenario.monitors.length)
    for (let i = 0; i < scenario.monitors.length; i++) {
      const card = page.locator(`.monitor[data-monitor="${scenario.monitors[i]!.peerId}"]`)
      const plots = card.locator('svg.plot')
      expect(await plots.count()).toBe(2)
      expect(await plots.nth(0).locator('circle.plot-point').count()).toBe(scenario.observations[i])
      expect(await plots.nth(0).locator('polyline.plot-line').count()).toBe(1)
      // Latency: p50 and p95 per observation.
      expect(await plots.nth(1).locator('circle.plot-point').count()).toBe(2 * scenario.observations[i]!)
    }
    expect(pageErrors).toEqual([])
  })

  it('follows a seen link to the counterparty entry', async () => {
    const seen = page.locator('.timeline a.seen').nth(3)
    const target = await seen.getAttribute('data-target')
    await seen.click()
    await expect.poll(() => page.locator(`[data-cid="${target}"]`).getAttribute('class')).toContain('flash')
  })

  it('takes a screenshot that is not blank', async () => {
    const file = join(dir, 'explorer.png')
    await page.evaluate('window.scrollTo(0, 0)')
    await page.screenshot({ path: file, fullPage: true })
    const size = (await stat(file)).size
    expect(size).toBeGreaterThan(50_000)
    // Keep a copy for a person to look at when asked.
    if (process.env['TALLY_SCREENSHOT'] !== undefined) await copyFile(file, process.env['TALLY_SCREENSHOT'])

    // Decode it with the browser's own PNG decoder and count what is drawn.
    const png = (await readFile(file)).toString('base64')
    const blank = await context.newPage()
    try {
      // The test runs without DOM typings: the decoder is page-side source text.
      const decoder = `(async (b64) => {
        const img = new Image()
        img.src = 'data:image/png;base64,' + b64
        await img.decode()
        const canvas = document.createElement('canvas')
        canvas.width = img.width
        canvas.height = img.height
        const ctx = canvas.getContext('2d')
        ctx.drawImage(img, 0, 0)
        const data = ctx.getImageData(0, 0, img.width, img.height).data
        let nonWhite = 0
        let sampled = 0
        const colours = new Set()
        for (let i = 0; i < data.length; i += 4 * 7) {
          const r = data[i], g = data[i + 1], b = data[i + 2]
          sampled++
          if (r < 235 || g < 235 || b < 235) nonWhite++
          colours.add((r << 16) | (g << 8) | b)
        }
        return { width: img.width, height: img.height, sampled, nonWhite, colours: colours.size }
      })(${JSON.stringify(png)})`
      const stats = (await blank.evaluate(decoder)) as { width: number; height: number; sampled: number; nonWhite: number; colours: number }
      expect(stats.width).toBe(1400)
      expect(stats.height).toBeGreaterThan(1000)
      expect(stats.nonWhite / stats.sampled).toBeGreaterThan(0.03)
      expect(stats.colours).toBeGreaterThan(50)
    } finally {
      await blank.close()
    }
  })
})
