// --- page: customer service (SPEC §2.7) -----------------------------------------------------
labels({
  'nav.service': 'Service', 'service.title': 'Customer service', 'service.nps': 'NPS by month',
  nps_score: 'NPS', promoters: 'Promoters', passives: 'Passives', detractors: 'Detractors', responses: 'Responses',
  active_at_start: 'Active at start', churned: 'Churned', churn_rate: 'Churn rate', retention_rate: 'Retention',
  complaints_opened: 'Complaints opened', complaints_resolved: 'Resolved', median_resolution_days: 'Median resolution (days)',
  open_complaints_at_end: 'Open at month end', months: 'Months', 'group.pool': 'Public pool', partial: 'month still running',
}, {
  'nav.service': '客服', 'service.title': '客户服务', 'service.nps': '每月 NPS',
  nps_score: 'NPS', promoters: '推荐者', passives: '中立者', detractors: '贬损者', responses: '回复数',
  active_at_start: '月初活跃客户', churned: '流失', churn_rate: '流失率', retention_rate: '留存率',
  complaints_opened: '新增投诉', complaints_resolved: '已解决', median_resolution_days: '解决天数中位数',
  open_complaints_at_end: '月末未结投诉', months: '月数', 'group.pool': '公海', partial: '本月尚未结束',
});

/** Stacked bars of promoters / passives / detractors per month, the score above each. */
function npsChart(series, title) {
  const w = 56, h = 150, top = 22, max = Math.max(1, ...series.map((m) => m.nps.responses));
  const cols = series.map((m, i) => {
    const x = i * w + 8;
    let y = top + h;
    const part = (n, cls) => {
      const bh = Math.round((n / max) * h);
      y -= bh;
      return bh ? `<rect class="${cls}" x="${x}" y="${y}" width="${w - 16}" height="${bh}"><title>${esc(t(cls))}: ${n}</title></rect>` : '';
    };
    const bars = part(m.nps.detractors, 'detractors') + part(m.nps.passives, 'passives') + part(m.nps.promoters, 'promoters');
    return `<g data-month="${esc(m.month)}">${bars}<text class="score" x="${x + (w - 16) / 2}" y="${y - 6}">${esc(num(m.nps.score, 1))}</text>` +
      `<text class="lbl" x="${x + (w - 16) / 2}" y="${top + h + 16}">${esc(m.month.slice(2))}</text></g>`;
  }).join('');
  return `<svg class="nps" viewBox="0 0 ${series.length * w + 8} ${top + h + 24}" role="img"><title>${esc(title)}</title>${cols}</svg>
  <p class="legend"><span class="key promoters"></span>${esc(t('promoters'))} <span class="key passives"></span>${esc(t('passives'))} <span class="key detractors"></span>${esc(t('detractors'))}</p>`;
}

function serviceTable(series) {
  return table([
    { label: 'month', cell: (m) => esc(m.month) },
    { label: 'nps_score', num: 1, cell: (m) => num(m.nps.score, 1) },
    { label: 'promoters', num: 1, cell: (m) => num(m.nps.promoters) },
    { label: 'passives', num: 1, cell: (m) => num(m.nps.passives) },
    { label: 'detractors', num: 1, cell: (m) => num(m.nps.detractors) },
    { label: 'active_at_start', num: 1, cell: (m) => num(m.active_at_start) },
    { label: 'churned', num: 1, cell: (m) => num(m.churned) },
    { label: 'churn_rate', num: 1, cell: (m) => pct(m.churn_rate) },
    { label: 'retention_rate', num: 1, cell: (m) => pct(m.retention_rate) },
    { label: 'complaints_opened', num: 1, cell: (m) => num(m.complaints_opened) },
    { label: 'complaints_resolved', num: 1, cell: (m) => num(m.complaints_resolved) },
    { label: 'median_resolution_days', num: 1, cell: (m) => num(m.median_resolution_days, 1) },
    { label: 'open_complaints_at_end', num: 1, cell: (m) => num(m.open_complaints_at_end) },
  ], series.slice().reverse());
}

async function servicePage() {
  const q = new URLSearchParams(location.search);
  const groupBy = q.get('group_by') === 'rep' ? 'rep' : 'none';
  const months = q.get('months') || '12';
  const s = await api(`/v1/reports/service?${new URLSearchParams({ months, group_by: groupBy })}`);
  const opts = ['none', 'rep'].map((g) => `<option value="${g}" ${g === groupBy ? 'selected' : ''}>${esc(t('group.' + g))}</option>`).join('');
  const groups = s.groups.map((g) => {
    const last = g.series[g.series.length - 1];
    const name = g.key === 'all' ? t('group.none') : (g.key === 'pool' ? t('group.pool') : g.key);
    const heading = groupBy === 'rep' && g.key !== 'pool' ? repLink(g.key) : esc(name);
    return `<section class="service-group" data-key="${esc(g.key)}"><h2>${heading}</h2>
      <div class="cards">${card('nps_score', num(last.nps.score, 1))}${card('churn_rate', pct(last.churn_rate))}${card('retention_rate', pct(last.retention_rate))}${card('complaints_opened', num(last.complaints_opened))}${card('median_resolution_days', num(last.median_resolution_days, 1))}${card('open_complaints_at_end', num(last.open_complaints_at_end))}</div>
      <h3>${esc(t('service.nps'))}</h3>${npsChart(g.series, t('service.nps'))}${serviceTable(g.series)}</section>`;
  }).join('');
  return `<h1>${esc(t('service.title'))} <span class="muted">${esc(s.months[0])} – ${esc(s.end)}${s.partial ? ' · ' + esc(t('partial')) : ''}</span></h1>
  <form class="filters" method="get" action="/service">
    <label>${esc(t('group_by'))} <select name="group_by">${opts}</select></label>
    <label>${esc(t('months'))} <input type="number" name="months" min="1" max="120" value="${esc(months)}"></label>
    <button type="submit">${esc(t('apply'))}</button></form>${groups || `<p class="muted">${esc(t('none'))}</p>`}`;
}

page(/^\/service$/, servicePage);
