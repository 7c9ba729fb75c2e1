// dealtrail dashboard: `/win-loss` (SPEC §2.6: deals closed in the period, by lost reason and
// by competitor), each count one click from its deals (`/deals?…`). Also the period picker
// the report pages share (`periodForm`, `periodQuery`).

labels({
  'nav.winloss': 'Win/loss', 'winloss.title': 'Win/loss', closed: 'Closed', lost_amount: 'Lost amount',
  'winloss.reasons': 'Lost, by reason', 'winloss.competitors': 'Competitors', lost_to: 'Lost to',
  noted: 'Deals where noted', won_when_noted: 'Won when noted',
}, {
  'nav.winloss': '赢输分析', 'winloss.title': '赢单与输单', closed: '已关闭', lost_amount: '输单金额',
  'winloss.reasons': '输单原因', 'winloss.competitors': '竞争对手', lost_to: '输给对方',
  noted: '出现过的商机', won_when_noted: '出现时赢单',
});

/** The period of the page's URL (`from`, `to`: dates, `to` exclusive as in the reports). */
function periodQuery(extra = []) {
  const q = new URLSearchParams(location.search);
  const params = new URLSearchParams();
  ['from', 'to', ...extra].forEach((k) => { if (q.get(k)) params.set(k, q.get(k)); });
  return { q, params };
}

/** A period picker (and `extra` controls' HTML) that reloads the page with its values. */
function periodForm(action, q, extra = '') {
  return `<form class="filters" method="get" action="${action}">${extra}
    <label>${esc(t('from'))} <input type="date" name="from" value="${esc(q.get('from') || '')}"></label>
    <label>${esc(t('to'))} <input type="date" name="to" value="${esc(q.get('to') || '')}"></label>
    <button type="submit">${esc(t('apply'))}</button></form>`;
}

/** A report period `[from, to)` as the deal list's filters (its `to` is inclusive: the day before). */
function listPeriod(q) {
  const out = {};
  if (q.get('from')) out.from = q.get('from');
  if (q.get('to')) {
    const d = new Date(`${q.get('to').slice(0, 10)}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() - 1);
    out.to = d.toISOString().slice(0, 10);
  }
  return out;
}

async function winLoss() {
  const { q, params } = periodQuery();
  const w = await api(`/v1/reports/win-loss?${params}`);
  const period = listPeriod(q);
  return `<h1>${esc(t('winloss.title'))}</h1>${periodForm('/win-loss', q)}
  <div class="cards">${card('closed', num(w.closed))}
    <div class="card" data-key="won"><div class="k">${esc(t('won'))}</div><div class="v">${countLink(w.won, { status: 'won', ...period })}</div></div>
    <div class="card" data-key="lost"><div class="k">${esc(t('lost'))}</div><div class="v">${countLink(w.lost, { status: 'lost', ...period })}</div></div>
    ${card('win_rate', pct(w.win_rate))}${card('won_amount', money(w.won_amount, w.currency))}${card('lost_amount', money(w.lost_amount, w.currency))}</div>
  <div class="two"><section id="reasons"><h2>${esc(t('winloss.reasons'))}</h2>
    ${bars(w.by_reason, (r) => r.amount, (r) => reasonName(r.reason), t('winloss.reasons'))}
    ${table([{ label: 'reason', cell: (r) => esc(reasonName(r.reason)) }, { label: 'count', num: 1, cell: (r) => countLink(r.count, { status: 'lost', reason: r.reason, ...period }) }, { label: 'amount', num: 1, cell: (r) => money(r.amount, w.currency) }], w.by_reason)}</section>
  <section id="competitors"><h2>${esc(t('winloss.competitors'))}</h2>
    ${table([{ label: 'competitor', cell: (c) => esc(c.competitor) }, { label: 'lost_to', num: 1, cell: (c) => countLink(c.lost_to, { status: 'lost', competitor: c.competitor, ...period }) }, { label: 'noted', num: 1, cell: (c) => num(c.noted) }, { label: 'won_when_noted', num: 1, cell: (c) => pct(c.win_rate) }], w.by_competitor)}</section></div>`;
}

page(/^\/win-loss$/, winLoss);
