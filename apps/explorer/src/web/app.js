// The explorer page: a pairs list and, for the selected pair, its whole record.
// Every piece of record data enters the DOM as text (never as markup).
import { linePlot, svg } from './plot.js'

/** Timeline entries drawn at first; the rest on request. */
const TIMELINE_PAGE = 400

/**
 * @param {string} tag
 * @param {Record<string, string> | null} [attrs]
 * @param {...(Node | string | number | null | undefined | false)} children
 * @returns {HTMLElement}
 */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs ?? {})) node.setAttribute(k, v)
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue
    node.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c)
  }
  return node
}

/** @param {string} id */
function short(id) {
  return id.length <= 16 ? id : `${id.slice(0, 8)}…${id.slice(-6)}`
}

/** An id shown short, whole on hover, in monospace. @param {string} id */
function idSpan(id, cls = 'id') {
  return el('span', { class: cls, title: id }, short(id))
}

/** @param {number | null} t */
function when(t) {
  return t === null ? '—' : `${new Date(t).toISOString().replace('T', ' ').slice(0, 19)} UTC`
}

/** @param {number} n */
function num(n) {
  return n.toLocaleString('en-US')
}

/** @param {number} amount @param {string | null} asset */
function money(amount, asset) {
  return `${num(amount)}${asset === null ? '' : ` ${asset}`}`
}

/** @param {number} bp */
function pct(bp) {
  return `${(bp / 100).toFixed(2)} %`
}

/** @param {number} ms */
function duration(ms) {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`
  if (ms % 60_000 === 0) return `${ms / 60_000} min`
  if (ms % 1000 === 0) return `${ms / 1000} s`
  return `${ms} ms`
}

/** @param {string} verdict */
function verdictBadge(verdict) {
  return el('span', { class: `badge verdict verdict-${verdict}`, 'data-verdict': verdict }, verdict)
}

/** @param {string} status */
function statusBadge(status) {
  return el('span', { class: `badge status status-${status}` }, status)
}

/**
 * @param {string[]} headers
 * @param {(Node | string | number | null)[][]} rows
 * @param {string} [cls]
 */
function table(headers, rows, cls = '') {
  return el(
    'table',
    { class: `grid ${cls}` },
    el('thead', null, el('tr', null, ...headers.map((h) => el('th', null, h)))),
    el('tbody', null, ...rows.map((r) => el('tr', null, ...r.map((c) => el('td', null, c ?? '—'))))),
  )
}

/** @param {string} path */
async function api(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } })
  const body = await res.json()
  if (!res.ok) throw new Error(`${body.error ?? res.status}: ${body.message ?? res.statusText}`)
  return body
}

// ---------------------------------------------------------------------------
// Pairs list

/** @type {any[]} */
let pairs = []

function selectedId() {
  const m = /^#\/pair\/([a-z0-9]+)$/.exec(location.hash)
  return m === null ? null : m[1]
}

function renderPairs() {
  const list = /** @type {HTMLElement} */ (document.getElementById('pair-list'))
  list.replaceChildren()
  if (pairs.length === 0) {
    list.append(el('li', { class: 'muted' }, 'No pair logs here.'))
    return
  }
  const current = selectedId()
  for (const p of pairs) {
    const a = el(
      'a',
      { href: `#/pair/${p.id}`, class: 'pair-link', 'data-pair': p.id },
      el(
        'span',
        { class: 'pair-title' },
        idSpan(p.id),
        p.ok ? el('span', { class: 'badge ok' }, 'verified') : el('span', { class: 'badge bad' }, `${p.problems} problem${p.problems === 1 ? '' : 's'}`),
      ),
      el('span', { class: 'pair-party' }, el('span', { class: 'role' }, 'P'), idSpan(p.provider)),
      el('span', { class: 'pair-party' }, el('span', { class: 'role' }, 'C'), idSpan(p.consumer)),
      el(
        'span',
        { class: 'pair-meta' },
        `${p.entries.provider + p.entries.consumer} entries · ${p.deals} deal${p.deals === 1 ? '' : 's'} · ${when(p.lastTime)}`,
      ),
    )
    list.append(el('li', { class: p.id === current ? 'selected' : '' }, a))
  }
}

// ---------------------------------------------------------------------------
// Pair detail

/** @param {any} d */
function renderHeader(d) {
  const v = d.verification
  const status = v.ok
    ? el('div', { class: 'verify ok', id: 'verification' }, el('strong', null, 'Verified.'), ` ${v.checked}: no problems.`)
    : el(
        'div',
        { class: 'verify bad', id: 'verification' },
        el('strong', null, `${v.problems.length} problem${v.problems.length === 1 ? '' : 's'}.`),
        ` ${v.checked}.`,
        el(
          'ul',
          { class: 'problems' },
          ...v.problems
            .slice(0, 50)
            .map((/** @type {any} */ p) =>
              el(
                'li',
                null,
                el('span', { class: `badge layer-${p.layer}` }, p.layer),
                ' ',
                el('code', null, p.code),
                p.role !== undefined ? ` ${p.role}${p.seq !== undefined ? ` #${p.seq}` : ''}${p.kind !== undefined ? ` (${p.kind})` : ''}: ` : ': ',
                p.message,
              ),
            ),
        ),
      )
  /** @param {'provider' | 'consumer'} role */
  const party = (role) =>
    el(
      'div',
      { class: `party party-${role}` },
      el('div', { class: 'label' }, role),
      el('code', { class: 'peer', 'data-role': role }, d[role]),
      el(
        'div',
        { class: 'party-meta' },
        el('span', { class: 'entry-count', 'data-role': role }, `${num(d.entries[role])} entries`),
        d.heads[role] === null ? '' : el('span', null, ' · head ', idSpan(d.heads[role].cid)),
      ),
    )
  return el(
    'section',
    { class: 'card pair-head' },
    el('h1', null, 'Pair ', el('code', { class: 'pair-id' }, d.id)),
    el('div', { class: 'origin muted' }, `from ${d.origin} · ${num(d.entries.provider + d.entries.consumer)} entries · last entry ${when(d.lastTime)}`),
    el('div', { class: 'parties' }, party('provider'), party('consumer')),
    status,
  )
}

/** @param {any} d */
function renderBalances(d) {
  const assets = Object.keys(d.balances)
  const body =
    assets.length === 0
      ? el('p', { class: 'muted' }, 'No settled amounts yet.')
      : table(
          ['asset', 'authorised', 'paid', 'acknowledged', 'held', 'due', 'on rail', 'collateral bonded', 'collateral awarded'],
          assets.map((a) => {
            const b = d.balances[a]
            return [
              a,
              num(b.authorised),
              num(b.paid),
              num(b.acknowledged),
              num(b.held),
              num(b.due),
              num(b.railSettled),
              num(b.collateralBonded),
              num(b.collateralAwarded),
            ]
          }),
          'balances',
        )
  return el('section', { class: 'card', id: 'balances' }, el('h2', null, 'Balances'), el('p', { class: 'hint' }, 'Minor units of each asset.'), body)
}

/** @param {any} t */
function termsList(t) {
  const r = t.rule
  const items = [
    ['resources', `${t.resources.class} × ${t.resources.count}`],
    ['jurisdiction', t.jurisdiction],
    ['price', `${money(t.price.amount, t.price.asset)} per ${duration(t.epochMs)} epoch`],
    ['term', t.epochs === null ? `open-ended, up to ${num(t.maxEpochs)} epochs` : `${t.epochs} epochs`],
    ['SLA', `${pct(t.sla.availabilityBp)} available${t.sla.latencyP95Us === null ? '' : `, p95 ≤ ${(t.sla.latencyP95Us / 1000).toFixed(1)} ms`}`],
    [
      'evidence rule',
      `v${r.version}: quorum ${r.quorum} of ${r.monitors.length} monitor${r.monitors.length === 1 ? '' : 's'}, up at ≥ ${pct(r.minAvailabilityBp)}${r.maxLatencyP95Us === null ? '' : ` and p95 ≤ ${(r.maxLatencyP95Us / 1000).toFixed(1)} ms`}; usage ${r.usage}; missing → ${r.missing}; ${r.payment} payment`,
    ],
    ['arbiter', t.arbiter],
    ['appeal arbiter', t.appealArbiter ?? 'none'],
    ['collateral', money(t.collateral.amount, t.collateral.asset)],
    ['rail', t.rail],
  ]
  return el('dl', { class: 'terms' }, ...items.flatMap(([k, v]) => [el('dt', null, k), el('dd', null, k.includes('arbiter') && v !== 'none' ? idSpan(v) : v)]))
}

/** @param {any} deal */
function epochsTable(deal) {
  if (deal.epochs.length === 0) return el('p', { class: 'muted' }, 'No epoch has evidence yet.')
  const rows = deal.epochs.map((/** @type {any} */ e) => {
    const ev = e.evaluation
    return [
      String(e.epoch),
      e.usage === null ? '—' : `${pct(e.usage.claimBp)}${e.usage.overEnvelope ? ' (over envelope)' : ''}`,
      `${e.observations}${e.foreign > 0 ? ` (+${e.foreign} unnamed)` : ''}`,
      ev === null ? (e.dispute !== null ? verdictBadge('disputed') : el('span', { class: 'muted' }, 'not evaluated')) : verdictBadge(ev.verdict),
      ev === null ? '—' : ev.reason,
      ev === null ? '—' : String(ev.evidence),
      ev === null ? '—' : money(ev.amount, deal.asset),
      ev === null || ev.held === 0 ? '—' : money(ev.held, deal.asset),
      e.dispute === null ? '—' : e.dispute.final ? 'ruled' : 'open',
      e.released ? '✓' : '',
    ]
  })
  const omitted = deal.epochsOmitted > 0 ? el('p', { class: 'muted' }, `${num(deal.epochsOmitted)} earlier epochs not shown.`) : ''
  return el(
    'div',
    null,
    omitted,
    table(['epoch', 'usage claim', 'observations', 'verdict', 'reason', 'evidence counted', 'amount', 'held', 'dispute', 'paid'], rows, 'epochs'),
  )
}

/** @param {any} deal */
function vouchersTable(deal) {
  if (deal.vouchers.length === 0) return el('p', { class: 'muted' }, 'No vouchers yet.')
  return table(
    ['time', 'cumulative amount', 'acknowledged', 'rail', 'entry'],
    deal.vouchers.map((/** @type {any} */ v) => [when(v.time), money(v.amount, deal.asset), v.ack, v.rail ?? '—', idSpan(v.cid)]),
    'vouchers',
  )
}

/** @param {any} deal */
function disputesList(deal) {
  if (deal.disputes.length === 0) return el('p', { class: 'muted' }, 'No disputes.')
  return el(
    'div',
    { class: 'disputes' },
    ...deal.disputes.map((/** @type {any} */ s) =>
      el(
        'div',
        { class: 'dispute' },
        el(
          'div',
          { class: 'dispute-head' },
          statusBadge(s.status),
          ` epoch${s.epochs.length === 1 ? '' : 's'} ${s.epochs.join(', ')} · opened by ${s.by} · ${when(s.time)} · `,
          el('em', null, s.reason),
        ),
        s.rulings.length === 0
          ? el('p', { class: 'muted' }, 'Awaiting a ruling.')
          : el(
              'ul',
              { class: 'rulings' },
              ...s.rulings.map((/** @type {any} */ r) =>
                el(
                  'li',
                  { class: 'ruling' },
                  el('strong', null, r.appealOf === null ? 'Ruling' : 'Appeal ruling'),
                  ' by ',
                  idSpan(r.arbiter),
                  `: ${money(r.toProvider, deal.asset)} to the provider, ${money(r.collateralToConsumer, deal.terms?.collateral.asset ?? null)} collateral to the consumer`,
                  s.final === r.cid ? el('span', { class: 'badge ok' }, 'final') : '',
                  r.reasons === null ? '' : el('blockquote', null, r.reasons),
                ),
              ),
            ),
      ),
    ),
  )
}

/** @param {any} deal */
function renderDeal(deal) {
  const c = deal.counts
  const figures = el(
    'div',
    { class: 'figures' },
    ...[
      ['authorised', deal.authorised],
      ['paid', deal.paid],
      ['acknowledged', deal.acknowledged],
      ['held', deal.held],
      ['collateral', deal.collateralBonded],
      ['awarded', deal.collateralAwarded],
    ].map(([k, v]) =>
      el('div', { class: 'figure' }, el('span', { class: 'figure-label' }, String(k)), el('span', { class: 'figure-value' }, money(Number(v), deal.asset))),
    ),
  )
  return el(
    'article',
    { class: 'card deal', 'data-deal': deal.id },
    el('h3', null, 'Deal ', idSpan(deal.id), ' ', statusBadge(deal.status)),
    el(
      'p',
      { class: 'deal-counts' },
      verdictBadge('performed'),
      ` ${c.performed} `,
      verdictBadge('not-performed'),
      ` ${c.notPerformed} `,
      verdictBadge('disputed'),
      ` ${c.disputed} `,
      verdictBadge('insufficient'),
      ` ${c.insufficient}`,
      el(
        'span',
        { class: 'muted' },
        ` · evidence: ${deal.evidence.usage} usage, ${deal.evidence.observations} observations${deal.evidence.foreign > 0 ? `, ${deal.evidence.foreign} from unnamed monitors` : ''}`,
      ),
    ),
    figures,
    el(
      'details',
      { class: 'terms-box' },
      el('summary', null, 'Contract terms'),
      deal.terms === null ? el('p', { class: 'muted' }, 'No contract yet.') : termsList(deal.terms),
    ),
    el('h4', null, 'Epochs'),
    epochsTable(deal),
    el('h4', null, 'Vouchers'),
    vouchersTable(deal),
    el('h4', null, 'Disputes and rulings'),
    disputesList(deal),
  )
}

/** @param {any} d */
function renderMonitors(d) {
  const section = el('section', { class: 'card', id: 'monitors' }, el('h2', null, 'Monitors'))
  if (d.monitors.length === 0) {
    section.append(el('p', { class: 'muted' }, 'No monitor observations in this log.'))
    return section
  }
  const rule = d.dealList.find((/** @type {any} */ x) => x.terms !== null)?.terms?.rule
  // One time axis for every monitor of the pair, so their plots line up.
  const ends = d.monitors.flatMap((/** @type {any} */ m) => m.points.map((/** @type {any} */ p) => p.end))
  const xs = { xMin: Math.min(...ends), xMax: Math.max(...ends) }
  const grid = el('div', { class: 'monitor-grid' })
  for (const m of d.monitors) {
    const pts = m.points
    const availability = linePlot({
      ...xs,
      title: 'availability',
      series: [
        {
          name: 'available',
          cls: 's-avail',
          points: pts.map((/** @type {any} */ p) => ({
            x: p.end,
            y: p.availabilityBp / 100,
            label: `#${p.seq} ${when(p.end)}: ${pct(p.availabilityBp)} (${p.ok}/${p.sent})`,
          })),
        },
      ],
      yMin: 0,
      yMax: 100,
      yFormat: (v) => `${v}%`,
      ...(rule !== undefined ? { threshold: { y: rule.minAvailabilityBp / 100, label: `rule ${pct(rule.minAvailabilityBp)}` } } : {}),
    })
    const withLatency = pts.filter((/** @type {any} */ p) => p.latencyUs !== null)
    const latency = linePlot({
      ...xs,
      title: 'latency (ms)',
      series: [
        {
          name: 'p50',
          cls: 's-p50',
          points: withLatency.map((/** @type {any} */ p) => ({
            x: p.end,
            y: p.latencyUs.p50 / 1000,
            label: `#${p.seq} p50 ${(p.latencyUs.p50 / 1000).toFixed(2)} ms`,
          })),
        },
        {
          name: 'p95',
          cls: 's-p95',
          points: withLatency.map((/** @type {any} */ p) => ({
            x: p.end,
            y: p.latencyUs.p95 / 1000,
            label: `#${p.seq} p95 ${(p.latencyUs.p95 / 1000).toFixed(2)} ms`,
          })),
        },
      ],
      yFormat: (v) => `${v}`,
      ...(rule !== undefined && rule.maxLatencyP95Us !== null ? { threshold: { y: rule.maxLatencyP95Us / 1000, label: 'rule p95' } } : {}),
    })
    grid.append(
      el(
        'div',
        { class: 'monitor', 'data-monitor': m.monitor },
        el(
          'div',
          { class: 'monitor-head' },
          el('strong', null, 'monitor '),
          idSpan(m.monitor),
          el(
            'span',
            { class: 'muted' },
            ` · weight ${m.weight === 0 ? 'none (not named)' : m.weight} · ${pts.length} observation${pts.length === 1 ? '' : 's'}`,
          ),
        ),
        availability,
        latency,
      ),
    )
  }
  section.append(grid)
  return section
}

/**
 * Two columns, provider | consumer, in timeline order; a curve in the gutter
 * links an entry to the counterparty entry it had newly seen.
 * @param {any} d
 */
function renderTimeline(d) {
  const section = el('section', { class: 'card', id: 'timeline' }, el('h2', null, 'Timeline'))
  section.append(
    el(
      'p',
      { class: 'hint' },
      'Both chains in the order every verifier replays them. Curves link an entry to the counterparty entry its author had just seen.',
      d.timelineOmitted > 0 ? ` ${num(d.timelineOmitted)} earlier entries are not sent.` : '',
    ),
  )
  let shown = Math.min(d.timeline.length, TIMELINE_PAGE)
  const wrap = el('div', { class: 'timeline-wrap' })
  const head = el(
    'div',
    { class: 'timeline-cols' },
    el('div', null, 'provider ', idSpan(d.provider)),
    el('div'),
    el('div', null, 'consumer ', idSpan(d.consumer)),
  )
  section.append(head, wrap)

  const draw = () => {
    const entries = d.timeline.slice(d.timeline.length - shown)
    const grid = el('div', { class: 'timeline' })
    /** @type {Map<string, HTMLElement>} */
    const byCid = new Map()
    /** @type {[HTMLElement, string, string][]} */
    const links = []
    const lastSeen = { provider: '', consumer: '' }
    entries.forEach((/** @type {any} */ e, /** @type {number} */ i) => {
      const card = el(
        'div',
        { class: `entry entry-${e.role} kind-${e.kind}${e.refused !== null ? ' refused' : ''}`, 'data-cid': e.cid, 'data-kind': e.kind, id: `e-${e.cid}` },
        el(
          'div',
          { class: 'entry-top' },
          el('span', { class: 'seq' }, `#${e.seq}`),
          el('span', { class: 'kind' }, e.kind),
          el('span', { class: 'time' }, when(e.time)),
        ),
        el('div', { class: 'entry-summary' }, e.summary),
        el(
          'div',
          { class: 'entry-foot' },
          idSpan(e.cid, 'id cid'),
          e.seen === null ? '' : el('a', { href: `#e-${e.seen.cid}`, class: 'seen', 'data-target': e.seen.cid }, `saw #${e.seen.seq ?? '?'}`),
          e.refused === null ? '' : el('span', { class: 'badge bad', title: 'the deal reducer refused this entry' }, e.refused),
        ),
      )
      card.style.gridRow = String(i + 1)
      card.style.gridColumn = e.role === 'provider' ? '1' : '3'
      byCid.set(e.cid, card)
      if (e.seen !== null && e.seen.cid !== lastSeen[/** @type {'provider' | 'consumer'} */ (e.role)]) links.push([card, e.seen.cid, e.role])
      if (e.seen !== null) lastSeen[/** @type {'provider' | 'consumer'} */ (e.role)] = e.seen.cid
      grid.append(card)
    })
    const overlay = svg('svg', { class: 'timeline-links', 'aria-hidden': 'true' })
    grid.append(overlay)
    wrap.replaceChildren(grid)
    if (shown < d.timeline.length) {
      const more = el('button', { type: 'button', class: 'more' }, `show ${num(d.timeline.length - shown)} earlier entries`)
      more.addEventListener('click', () => {
        shown = d.timeline.length
        draw()
      })
      wrap.prepend(more)
    }
    const paint = () => {
      overlay.replaceChildren()
      const box = grid.getBoundingClientRect()
      overlay.setAttribute('width', String(box.width))
      overlay.setAttribute('height', String(box.height))
      for (const [card, target, role] of links) {
        const to = byCid.get(target)
        if (to === undefined) continue
        const a = to.getBoundingClientRect()
        const b = card.getBoundingClientRect()
        const fromX = role === 'provider' ? a.left - box.left : a.right - box.left
        const toX = role === 'provider' ? b.right - box.left : b.left - box.left
        const y1 = a.top - box.top + a.height / 2
        const y2 = b.top - box.top + b.height / 2
        const mid = (fromX + toX) / 2
        overlay.append(svg('path', { d: `M${fromX},${y1} C${mid},${y1} ${mid},${y2} ${toX},${y2}`, class: `link link-${role}` }))
        overlay.append(svg('circle', { cx: toX, cy: y2, r: 2.5, class: `link-end link-${role}` }))
      }
    }
    requestAnimationFrame(paint)
    new ResizeObserver(() => paint()).observe(grid)
    grid.addEventListener('click', (ev) => {
      const a = /** @type {HTMLElement} */ (ev.target).closest('a.seen')
      if (a === null) return
      ev.preventDefault()
      const target = byCid.get(a.getAttribute('data-target') ?? '')
      if (target === undefined) return
      target.scrollIntoView({ block: 'center', behavior: 'smooth' })
      target.classList.remove('flash')
      void target.offsetWidth
      target.classList.add('flash')
    })
  }
  draw()
  return section
}

/** @param {any} d */
function renderDetail(d) {
  const main = /** @type {HTMLElement} */ (document.getElementById('detail'))
  const deals = el('section', { class: 'deals', id: 'deals' }, el('h2', null, `Deals (${d.dealList.length})`))
  if (d.dealList.length === 0) deals.append(el('p', { class: 'muted card' }, 'No deals in this log.'))
  for (const deal of d.dealList) deals.append(renderDeal(deal))
  main.replaceChildren(renderHeader(d), renderBalances(d), deals, renderMonitors(d), renderTimeline(d))
  main.setAttribute('data-loaded', d.id)
}

// ---------------------------------------------------------------------------

async function show() {
  const main = /** @type {HTMLElement} */ (document.getElementById('detail'))
  renderPairs()
  const id = selectedId()
  if (id === null) {
    main.replaceChildren(el('p', { class: 'muted empty' }, pairs.length === 0 ? 'Nothing to show.' : 'Select a pair to see its record.'))
    return
  }
  main.replaceChildren(el('p', { class: 'muted empty' }, 'loading…'))
  try {
    renderDetail(await api(`/api/pairs/${id}`))
  } catch (err) {
    main.replaceChildren(el('p', { class: 'error' }, `Cannot show pair ${id}: ${err instanceof Error ? err.message : String(err)}`))
  }
}

async function start() {
  try {
    pairs = (await api('/api/pairs')).pairs
  } catch (err) {
    const list = /** @type {HTMLElement} */ (document.getElementById('pair-list'))
    list.replaceChildren(el('li', { class: 'error' }, `Cannot list pairs: ${err instanceof Error ? err.message : String(err)}`))
    return
  }
  window.addEventListener('hashchange', () => {
    if (location.hash.startsWith('#/')) void show()
  })
  await show()
}

void start()
