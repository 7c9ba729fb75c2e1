// dealtrail dashboard: `/channels` (SPEC §2.6: per lead channel, leads, conversion, cost per
// lead and per win, spend, revenue, ROI). Organisation-wide: a rep or manager token gets 403.

labels({
  'nav.channels': 'Channels', 'channels.title': 'Lead channels', channel: 'Channel', spend: 'Spend', leads: 'Leads',
  qualified: 'Qualified', converted: 'Converted', deals: 'Deals', revenue: 'Revenue',
  cost_per_lead: 'Cost per lead', cost_per_win: 'Cost per win', roi: 'ROI', conversion: 'Conversion',
}, {
  'nav.channels': '渠道', 'channels.title': '线索渠道', channel: '渠道', spend: '投入', leads: '线索',
  qualified: '已确认', converted: '已转化', deals: '商机', revenue: '收入',
  cost_per_lead: '单条线索成本', cost_per_win: '单个赢单成本', roi: '投资回报率', conversion: '转化率',
});

async function channels() {
  const { q, params } = periodQuery();
  const c = await api(`/v1/reports/channels?${params}`);
  const rows = c.channels;
  return `<h1>${esc(t('channels.title'))}</h1>${periodForm('/channels', q)}
  <section><h2>${esc(t('spend'))} · ${esc(t('revenue'))}</h2>${bars(rows, (r) => r.revenue, (r) => r.channel, t('revenue'), c.currency)}</section>
  <section id="channel-table">${table([
    { label: 'channel', cell: (r) => esc(r.channel) }, { label: 'leads', num: 1, cell: (r) => num(r.leads) },
    { label: 'qualified', num: 1, cell: (r) => num(r.qualified) }, { label: 'converted', num: 1, cell: (r) => num(r.converted) },
    { label: 'conversion', num: 1, cell: (r) => pct(r.leads ? r.converted / r.leads : null) },
    { label: 'deals', num: 1, cell: (r) => num(r.deals) }, { label: 'won', num: 1, cell: (r) => num(r.won) },
    { label: 'spend', num: 1, cell: (r) => money(r.spend, c.currency) }, { label: 'revenue', num: 1, cell: (r) => money(r.revenue, c.currency) },
    { label: 'cost_per_lead', num: 1, cell: (r) => money(r.cost_per_lead, c.currency) }, { label: 'cost_per_win', num: 1, cell: (r) => money(r.cost_per_win, c.currency) },
    { label: 'roi', num: 1, cell: (r) => pct(r.roi) }], rows)}</section>`;
}

page(/^\/channels$/, channels);
