// dealtrail dashboard: `/l2c` (SPEC §2.6 lead-to-cash: leads → conversion → wins → cash).
// Organisation-wide: a rep or manager token gets 403.

labels({
  'nav.l2c': 'Lead to cash', 'l2c.title': 'Lead to cash', converted_leads: 'Converted leads',
  lead_conversion_rate: 'Lead conversion', avg_won_amount: 'Average won amount', received: 'Received',
  collection_ratio: 'Collected', median_sales_cycle_days: 'Median sales cycle (days)',
}, {
  'nav.l2c': '线索到回款', 'l2c.title': '从线索到回款', converted_leads: '已转化线索',
  lead_conversion_rate: '线索转化率', avg_won_amount: '平均赢单金额', received: '已回款',
  collection_ratio: '回款率', median_sales_cycle_days: '销售周期中位数（天）',
});

async function l2c() {
  const { q, params } = periodQuery();
  const r = await api(`/v1/reports/l2c?${params}`);
  const period = listPeriod(q);
  // The chain, left to right: each step's figure and the ratio that leads to the next.
  const steps = [
    ['leads', num(r.leads)], ['converted_leads', num(r.converted_leads)],
    ['deals_won', countLink(r.deals_won, { status: 'won', ...period })], ['won_amount', esc(money(r.won_amount, r.currency))], ['received', esc(money(r.received, r.currency))],
  ];
  const ratios = [pct(r.lead_conversion_rate), `${esc(t('win_rate'))} ${pct(r.win_rate)}`, esc(money(r.avg_won_amount, r.currency)), pct(r.collection_ratio)];
  const chain = steps.map(([k, v], i) => `<div class="card" data-key="${k}"><div class="k">${esc(t(k))}</div><div class="v">${v}</div>${i < ratios.length ? `<div class="k">→ ${ratios[i]}</div>` : ''}</div>`).join('');
  return `<h1>${esc(t('l2c.title'))}</h1>${periodForm('/l2c', q)}
  <div class="cards" id="l2c-chain">${chain}</div>
  <div class="cards">${card('lead_conversion_rate', pct(r.lead_conversion_rate))}${card('win_rate', pct(r.win_rate))}${card('collection_ratio', pct(r.collection_ratio))}${card('median_sales_cycle_days', num(r.median_sales_cycle_days, 1))}${card('activities_per_won_deal', num(r.activities_per_won_deal, 1))}</div>`;
}

page(/^\/l2c$/, l2c);
