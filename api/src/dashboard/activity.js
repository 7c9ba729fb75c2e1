// dealtrail dashboard: `/activity` (SPEC §2.6: per rep per week, activities by kind, and
// activities per won deal), over the caller's scope.

labels({
  'nav.activity': 'Activity', 'activity.title': 'Activity', week: 'Week', total: 'Total',
  activities_per_won_deal: 'Activities per won deal', 'kind.call': 'Calls', 'kind.email': 'Emails',
  'kind.sms': 'SMS', 'kind.meeting': 'Meetings', 'kind.visit': 'Visits', 'kind.note': 'Notes',
}, {
  'nav.activity': '活动', 'activity.title': '销售活动', week: '周', total: '合计',
  activities_per_won_deal: '每个赢单的活动数', 'kind.call': '电话', 'kind.email': '邮件',
  'kind.sms': '短信', 'kind.meeting': '会议', 'kind.visit': '拜访', 'kind.note': '备注',
});

const KINDS = ['call', 'email', 'sms', 'meeting', 'visit', 'note'];

async function activityPage() {
  const { q, params } = periodQuery(['rep']);
  const a = await api(`/v1/reports/activity?${params}`);
  const reps = [...new Set(a.rows.map((r) => r.rep))].sort();
  const only = q.get('rep');
  const rows = a.rows.filter((r) => !only || r.rep === only).slice().reverse();
  // Per rep: the weekly totals as a sparkline, and the sums.
  const sums = reps.map((rep) => {
    const mine = a.rows.filter((r) => r.rep === rep);
    const total = mine.reduce((s, r) => s + r.total, 0);
    const won = mine.reduce((s, r) => s + r.deals_won, 0);
    return { rep, weeks: mine.map((r) => r.total), total, won };
  });
  const pick = `<label>${esc(t('rep'))} <select name="rep"><option value="">${esc(t('any'))}</option>${reps.map((r) => `<option ${r === only ? 'selected' : ''}>${esc(r)}</option>`).join('')}</select></label>`;
  return `<h1>${esc(t('activity.title'))}</h1>${periodForm('/activity', q, pick)}
  <section id="activity-reps">${table([{ label: 'rep', cell: (s) => repLink(s.rep) }, { label: 'week', cell: (s) => sparkline(s.weeks, s.rep) },
    { label: 'total', num: 1, cell: (s) => num(s.total) }, { label: 'deals_won', num: 1, cell: (s) => num(s.won) },
    { label: 'activities_per_won_deal', num: 1, cell: (s) => num(s.won ? s.total / s.won : null, 1) }], sums)}</section>
  <section id="activity-weeks">${table([{ label: 'rep', cell: (r) => repLink(r.rep) }, { label: 'week', cell: (r) => esc(r.week) },
    ...KINDS.map((k) => ({ label: 'kind.' + k, num: 1, cell: (r) => num(r.activities[k] || 0) })),
    { label: 'total', num: 1, cell: (r) => num(r.total) }, { label: 'deals_won', num: 1, cell: (r) => num(r.deals_won) },
    { label: 'activities_per_won_deal', num: 1, cell: (r) => num(r.activities_per_won_deal, 1) }], rows.slice(0, 200))}</section>`;
}

page(/^\/activity$/, activityPage);
