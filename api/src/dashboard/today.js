// --- page: today, the rep's follow-up list (SPEC §2.8); a rep's home after sign-in ---------
labels({
  'nav.today': 'Today', 'today.title': 'Today', 'today.for': 'Follow-up list of', 'today.whose': 'Whose list?',
  'today.overdue': 'Overdue payments', 'today.stale': 'Deals gone quiet', 'today.pool': 'About to go back to the pool',
  'today.leads': 'Leads to work', 'today.policy_off': 'The pool release policy is off: no customer goes back by itself.',
  installment: 'Installment', due: 'Due', received: 'Received', days_overdue: 'Days overdue', title: 'Title',
  last_activity_at: 'Last activity', releases_in_days: 'Released in (days)', lead: 'Lead', channel: 'Channel',
  fit_score: 'Fit', intent_score: 'Intent', score: 'Score', qualified_at: 'Qualified', show: 'Show',
  next: 'Next', 'act.payment': 'Record the payment', 'act.call': 'Log a call', 'act.lead': 'Work the lead',
}, {
  'nav.today': '今日', 'today.title': '今日待办', 'today.for': '跟进清单：', 'today.whose': '查看谁的清单？',
  'today.overdue': '逾期回款', 'today.stale': '沉寂的商机', 'today.pool': '即将退回公海', 'today.leads': '待跟进线索',
  'today.policy_off': '公海自动释放规则未开启：客户不会自动退回公海。',
  installment: '分期', due: '到期日', received: '已收', days_overdue: '逾期天数', title: '名称',
  last_activity_at: '最近活动', releases_in_days: '距释放（天）', lead: '线索', channel: '渠道',
  fit_score: '匹配度', intent_score: '意向度', score: '得分', qualified_at: '确认时间', show: '查看',
  next: '下一步', 'act.payment': '记录回款', 'act.call': '记录通话', 'act.lead': '跟进线索',
});

/** The next action of a Today item: a link to the form that does it, on the item's page. */
const act = (href, key) => `<a class="act" href="${esc(href)}">${esc(t(key))}</a>`;

// customerLink: deals.js (one module).
const leadLink = (id, name) => `<a href="/leads/${encodeURIComponent(id)}">${esc(name || id)}</a>`;
const longDay = (s) => (s ? new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeZone: 'UTC' }).format(new Date(s)) : '—');

/** After a sign-in: a rep (whose own follow-up list needs no name) lands on Today. */
async function signedIn() {
  if (location.pathname === '/') {
    try {
      await api('/v1/reports/follow-up');
      history.replaceState(null, '', '/today');
    } catch (_) { /* not a rep: stays on the overview */ }
  }
  render();
}

async function today() {
  const q = new URLSearchParams(location.search);
  const rep = q.get('rep') || '';
  let f;
  try {
    f = await api(`/v1/reports/follow-up${rep ? '?' + new URLSearchParams({ rep }) : ''}`);
  } catch (e) {
    if (e.status !== 400 || rep) throw e;
    // Not a rep: a manager (or admin) names whose list to see.
    return `<h1>${esc(t('today.title'))}</h1><form class="filters" method="get" action="/today">
      <label>${esc(t('today.whose'))} <input name="rep" required></label><button type="submit">${esc(t('show'))}</button></form>`;
  }
  const section = (id, key, body) => `<section id="${id}" data-count="${body.count}"><h2>${esc(t(key))} <span class="muted">${num(body.count)}</span></h2>${body.html}</section>`;
  const list = (rows, cols) => ({ count: rows.length, html: table(cols, rows) });
  const overdue = list(f.overdue_payments, [
    { label: 'deal', cell: (r) => dealLink(r.deal_id) }, { label: 'installment', cell: (r) => esc(r.installment_id) },
    { label: 'due', cell: (r) => esc(longDay(r.due)) }, { label: 'amount', num: 1, cell: (r) => money(r.amount) },
    { label: 'received', num: 1, cell: (r) => money(r.received) }, { label: 'days_overdue', num: 1, cell: (r) => num(r.days_overdue) },
    { label: 'next', cell: (r) => act(`/deals/${encodeURIComponent(r.deal_id)}?record=payment&installment=${encodeURIComponent(r.installment_id)}`, 'act.payment') }]);
  const stale = list(f.stale_deals, [
    { label: 'deal', cell: (r) => dealLink(r.deal_id) }, { label: 'title', cell: (r) => esc(r.title) },
    { label: 'stage', cell: (r) => esc(stageName(r.stage)) }, { label: 'amount', num: 1, cell: (r) => money(r.amount) },
    { label: 'last_touch_at', cell: (r) => esc(date(r.last_touch_at)) }, { label: 'days_since_touch', num: 1, cell: (r) => num(r.days_since_touch, 1) },
    { label: 'next', cell: (r) => act(`/deals/${encodeURIComponent(r.deal_id)}?record=activity`, 'act.call') }]);
  const pool = f.pool_release_after_days == null
    ? { count: 0, html: `<p class="muted">${esc(t('today.policy_off'))}</p>` }
    : list(f.pool_release_soon, [
      { label: 'customer', cell: (r) => customerLink(r.customer_id, r.name) },
      { label: 'last_activity_at', cell: (r) => esc(date(r.last_activity_at)) },
      { label: 'releases_in_days', num: 1, cell: (r) => num(r.releases_in_days, 1) },
      { label: 'next', cell: (r) => act(`/customers/${encodeURIComponent(r.customer_id)}?record=activity`, 'act.call') }]);
  const leads = list(f.leads_to_work, [
    { label: 'lead', cell: (r) => leadLink(r.lead_id, r.name) }, { label: 'channel', cell: (r) => esc(r.channel) },
    { label: 'fit_score', num: 1, cell: (r) => num(r.fit_score) }, { label: 'intent_score', num: 1, cell: (r) => num(r.intent_score) },
    { label: 'score', num: 1, cell: (r) => num(r.score) }, { label: 'qualified_at', cell: (r) => esc(date(r.qualified_at)) },
    { label: 'next', cell: (r) => act(`/leads/${encodeURIComponent(r.lead_id)}`, 'act.lead') }]);
  return `<h1>${esc(t('today.title'))} <span class="muted">${esc(t('today.for'))} ${repLink(f.rep)} · ${esc(date(f.as_of))}</span></h1>
  ${section('overdue', 'today.overdue', overdue)}${section('stale', 'today.stale', stale)}
  ${section('pool-soon', 'today.pool', pool)}${section('leads', 'today.leads', leads)}`;
}

page(/^\/today$/, today);
