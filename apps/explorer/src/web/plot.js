// Line plots drawn as inline SVG, no chart library: the page must work offline.

const SVG = 'http://www.w3.org/2000/svg'

/**
 * @param {string} name
 * @param {Record<string, string | number>} [attrs]
 * @returns {SVGElement}
 */
export function svg(name, attrs = {}) {
  const el = document.createElementNS(SVG, name)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  return el
}

/**
 * "Nice" tick values covering [lo, hi].
 * @param {number} lo
 * @param {number} hi
 * @param {number} count
 * @returns {number[]}
 */
export function ticks(lo, hi, count) {
  if (!(hi > lo)) return [lo]
  const raw = (hi - lo) / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw
  const out = []
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)))
  return out
}

/** @param {number} t */
function clock(t) {
  return new Date(t).toISOString().slice(11, 16)
}

/**
 * @typedef {{ x: number, y: number, label: string }} PlotPoint
 * @typedef {{ name: string, cls: string, points: PlotPoint[] }} PlotSeries
 * @typedef {{
 *   title: string,
 *   series: PlotSeries[],
 *   xMin?: number,
 *   xMax?: number,
 *   yMin?: number,
 *   yMax?: number,
 *   yFormat: (v: number) => string,
 *   threshold?: { y: number, label: string },
 *   width?: number,
 *   height?: number,
 * }} PlotSpec
 */

/**
 * A line plot of one or more series over time (x in epoch ms). Each point
 * is a circle with a tooltip; gaps in time are not interpolated away.
 * @param {PlotSpec} spec
 * @returns {SVGElement}
 */
export function linePlot(spec) {
  const width = spec.width ?? 460
  const height = spec.height ?? 180
  const m = { left: 52, right: 12, top: 22, bottom: 26 }
  const all = spec.series.flatMap((s) => s.points)
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'plot', role: 'img', 'aria-label': spec.title })
  const title = svg('text', { x: m.left, y: 14, class: 'plot-title' })
  title.textContent = spec.title
  root.append(title)
  if (all.length === 0) {
    const t = svg('text', { x: width / 2, y: height / 2, class: 'plot-empty', 'text-anchor': 'middle' })
    t.textContent = 'no data'
    root.append(t)
    return root
  }
  let x0 = spec.xMin ?? Math.min(...all.map((p) => p.x))
  let x1 = spec.xMax ?? Math.max(...all.map((p) => p.x))
  if (x1 === x0) {
    x0 -= 60_000
    x1 += 60_000
  }
  let y0 = spec.yMin ?? Math.min(...all.map((p) => p.y))
  let y1 = spec.yMax ?? Math.max(...all.map((p) => p.y))
  if (spec.yMin === undefined) y0 = Math.min(y0, 0)
  if (y1 === y0) y1 = y0 + 1
  if (spec.yMax === undefined) y1 += (y1 - y0) * 0.08
  const pw = width - m.left - m.right
  const ph = height - m.top - m.bottom
  const sx = (/** @type {number} */ x) => m.left + ((x - x0) / (x1 - x0)) * pw
  const sy = (/** @type {number} */ y) => m.top + ph - ((y - y0) / (y1 - y0)) * ph

  const grid = svg('g', { class: 'plot-grid' })
  for (const v of ticks(y0, y1, 4)) {
    grid.append(svg('line', { x1: m.left, x2: width - m.right, y1: sy(v), y2: sy(v) }))
    const label = svg('text', { x: m.left - 6, y: sy(v) + 4, 'text-anchor': 'end', class: 'plot-tick' })
    label.textContent = spec.yFormat(v)
    grid.append(label)
  }
  const span = x1 - x0
  const stepMs = [60_000, 300_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 86_400_000].find((s) => span / s <= 6) ?? span / 5
  for (let t = Math.ceil(x0 / stepMs) * stepMs; t <= x1; t += stepMs) {
    const label = svg('text', { x: sx(t), y: height - 8, 'text-anchor': 'middle', class: 'plot-tick' })
    label.textContent = stepMs >= 86_400_000 ? new Date(t).toISOString().slice(5, 10) : clock(t)
    grid.append(label)
  }
  grid.append(svg('line', { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ph, class: 'plot-axis' }))
  grid.append(svg('line', { x1: m.left, x2: width - m.right, y1: m.top + ph, y2: m.top + ph, class: 'plot-axis' }))
  root.append(grid)

  if (spec.threshold !== undefined && spec.threshold.y >= y0 && spec.threshold.y <= y1) {
    const y = sy(spec.threshold.y)
    root.append(svg('line', { x1: m.left, x2: width - m.right, y1: y, y2: y, class: 'plot-threshold' }))
    // Below the line at the left: the legend sits top right, and the first points rarely sit just under a threshold.
    const t = svg('text', { x: m.left + 4, y: y + 11, class: 'plot-threshold-label' })
    t.textContent = spec.threshold.label
    root.append(t)
  }

  const legend = svg('g', { class: 'plot-legend' })
  let lx = width - m.right
  for (const s of [...spec.series].reverse()) {
    const t = svg('text', { x: lx, y: 14, 'text-anchor': 'end', class: `plot-legend-text ${s.cls}` })
    t.textContent = s.name
    legend.append(t)
    lx -= s.name.length * 6.5 + 14
  }
  root.append(legend)

  for (const s of spec.series) {
    const g = svg('g', { class: `plot-series ${s.cls}` })
    const pts = [...s.points].sort((a, b) => a.x - b.x)
    if (pts.length > 1) g.append(svg('polyline', { points: pts.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' '), class: 'plot-line' }))
    for (const p of pts) {
      const c = svg('circle', { cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: 3, class: 'plot-point' })
      const tip = svg('title')
      tip.textContent = p.label
      c.append(tip)
      g.append(c)
    }
    root.append(g)
  }
  return root
}
