// dealtrail dashboard: our own small client. Reads the JSON API with the bearer token and
// draws everything as HTML and inline SVG. All labels go through `t()`.

const DICT = {
  en: {
    'nav.overview': 'Overview', 'nav.deals': 'Deals', 'nav.funnel': 'Funnel', 'nav.pool': 'Pool', logout: 'Log out',
    'login.title': 'Sign in', 'login.token': 'Access token', 'login.submit': 'Sign in',
    'login.bad': 'That token was not accepted.',
    'overview.title': 'Pipeline today', open_count: 'Open deals', open_amount: 'Open amount',
    forecast: 'Forecast', won_this_month: 'Won this month', coverage: 'Coverage of target',
    'overview.stages': 'Open pipeline by stage', 'overview.leaderboard': 'Rep leaderboard',
    'overview.stale': 'Stale deals', 'overview.stuck': 'Stuck deals', 'overview.top': 'Largest open deals',
    rep: 'Rep', deal: 'Deal', stage: 'Stage', amount: 'Amount', deals_won: 'Deals won', won_amount: 'Won amount',
    days_since_touch: 'Days since touch', days_in_stage: 'Days in stage', count: 'Count', weighted: 'Weighted',
    none: 'None', 'notfound': 'Not found, or not visible to you.', loading: 'Loading…', error: 'Something went wrong',
    'funnel.title': 'Funnel', group_by: 'Group by', from: 'From', to: 'To', apply: 'Apply',
    'group.none': 'All', 'group.rep': 'Rep', 'group.source': 'Source', 'group.industry': 'Industry',
    opened: 'Opened', won: 'Won', lost: 'Lost', open: 'Open', win_rate: 'Win rate', reached: 'Reached',
    conversion_to_next: 'Conversion to next', median_days_in_stage: 'Median days', lost_here: 'Lost here',
    'rep.title': 'Rep', trend: 'Trend', 'trend.stable': 'stable', 'trend.volatile': 'volatile',
    'trend.improving': 'improving', 'trend.declining': 'declining', 'trend.insufficient_data': 'insufficient data',
    month: 'Month', deals_lost: 'Deals lost', big_deals_lost: 'Big deals lost', activities: 'Activities',
    active_customers: 'Active customers',
    'deal.title': 'Deal replay', step: 'Step', status: 'Status', owner: 'Owner', quotes: 'Quotes',
    competitors: 'Competitors', last_touch_at: 'Last touch', paid: 'Paid', analysis: 'Analysis',
    outcome: 'Outcome', lost_reason: 'Lost reason', competitor: 'Competitor', stage_at_close: 'Stage at close',
    days_open: 'Days open', stage_regressions: 'Stage regressions', quote_revisions: 'Quote revisions',
    longest_silence_days: 'Longest silence (days)', last_activity_before_close_days: 'Last activity before close (days)',
    won_deals_of_rep: 'Won deals of the same rep', median_activities: 'median activities', median_days_open: 'median days open',
    'customer.title': 'Customer', timeline: 'Timeline', 'pool.title': 'Public pool', customer: 'Customer',
    days_in_pool: 'Days in pool', claims: 'Claims', releases: 'Releases',
    'status.open': 'open', 'status.won': 'won', 'status.lost': 'lost',
  },
  zh: {
    'nav.overview': '总览', 'nav.deals': '商机', 'nav.funnel': '漏斗', 'nav.pool': '公海', logout: '退出',
    'login.title': '登录', 'login.token': '访问令牌', 'login.submit': '登录', 'login.bad': '令牌无效。',
    'overview.title': '今日销售管道', open_count: '进行中商机', open_amount: '进行中金额', forecast: '预测',
    won_this_month: '本月赢单', coverage: '目标覆盖率', 'overview.stages': '各阶段进行中商机',
    'overview.leaderboard': '销售排行榜', 'overview.stale': '停滞商机', 'overview.stuck': '卡住的商机',
    'overview.top': '最大进行中商机', rep: '销售', deal: '商机', stage: '阶段', amount: '金额', deals_won: '赢单数',
    won_amount: '赢单金额', days_since_touch: '未跟进天数', days_in_stage: '阶段停留天数', count: '数量',
    weighted: '加权金额', none: '无', notfound: '未找到，或您无权查看。', loading: '加载中…', error: '出错了',
    'funnel.title': '销售漏斗', group_by: '分组', from: '开始', to: '结束', apply: '应用',
    'group.none': '全部', 'group.rep': '销售', 'group.source': '来源', 'group.industry': '行业',
    opened: '新建', won: '赢单', lost: '输单', open: '进行中', win_rate: '赢率', reached: '到达',
    conversion_to_next: '转化率', median_days_in_stage: '中位天数', lost_here: '在此输单',
    'rep.title': '销售', trend: '趋势', 'trend.stable': '稳定', 'trend.volatile': '波动', 'trend.improving': '上升',
    'trend.declining': '下降', 'trend.insufficient_data': '数据不足', month: '月份', deals_lost: '输单数',
    big_deals_lost: '丢失大单', activities: '活动', active_customers: '活跃客户',
    'deal.title': '商机回放', step: '步骤', status: '状态', owner: '负责人', quotes: '报价次数', competitors: '竞争对手',
    last_touch_at: '最近跟进', paid: '已回款', analysis: '分析', outcome: '结果', lost_reason: '输单原因',
    competitor: '竞争对手', stage_at_close: '关闭时阶段', days_open: '持续天数', stage_regressions: '阶段倒退',
    quote_revisions: '报价修改', longest_silence_days: '最长沉默天数', last_activity_before_close_days: '关闭前最后活动（天）',
    won_deals_of_rep: '同一销售的赢单', median_activities: '活动中位数', median_days_open: '周期中位数',
    'customer.title': '客户', timeline: '时间线', 'pool.title': '公海客户', customer: '客户', days_in_pool: '在公海天数',
    claims: '领取', releases: '释放', 'status.open': '进行中', 'status.won': '赢单', 'status.lost': '输单',
  },
};

let lang = localStorage.getItem('dealtrail.lang') || (navigator.language.startsWith('zh') ? 'zh' : 'en');
const t = (k) => (DICT[lang] && DICT[lang][k]) || DICT.en[k] || k;
const locale = () => (lang === 'zh' ? 'zh-CN' : 'en-US');
/** An amount in `currency` (a report's `currency`, a deal's own); a plain number when it is not known. */
const money = (x, currency) => (x == null ? '—' : new Intl.NumberFormat(locale(), currency ? { style: 'currency', currency, maximumFractionDigits: 0 } : { maximumFractionDigits: 0 }).format(x));
const num = (x, d = 0) => (x == null ? '—' : new Intl.NumberFormat(locale(), { maximumFractionDigits: d }).format(x));
const pct = (x) => (x == null ? '—' : new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 1 }).format(x));
const date = (s) => (s ? new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }).format(new Date(s)) : '—');
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const main = () => document.getElementById('main');

// --- token -------------------------------------------------------------------------------
function takeHashToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    localStorage.setItem('dealtrail.token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
    return true;
  }
  return false;
}
const token = () => localStorage.getItem('dealtrail.token');

class HttpError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(path) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
  if (res.ok) return res.json();
  let detail = res.statusText;
  try { detail = (await res.json()).detail || detail; } catch (_) { /* not JSON */ }
  throw new HttpError(res.status, detail);
}

function showLogin(message) {
  document.getElementById('login').hidden = false;
  main().hidden = true;
  document.getElementById('login-error').textContent = message || '';
  document.getElementById('token').focus();
}

// --- small drawing helpers ---------------------------------------------------------------
function table(cols, rows, empty) {
  if (!rows.length) return `<p class="muted">${esc(empty || t('none'))}</p>`;
  const head = cols.map((c) => `<th scope="col" class="${c.num ? 'num' : ''}">${esc(t(c.label))}</th>`).join('');
  const body = rows.map((r) => `<tr>${cols.map((c) => `<td class="${c.num ? 'num' : ''}">${c.cell(r)}</td>`).join('')}</tr>`).join('');
  return `<div class="scroll"><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

function bars(items, value, label, title, currency) {
  const max = Math.max(1, ...items.map(value));
  const h = 26;
  const rows = items.map((it, i) => {
    const w = Math.round((value(it) / max) * 300);
    return `<g transform="translate(0,${i * h})"><text x="0" y="17" class="lbl">${esc(label(it))}</text>` +
      `<rect x="120" y="4" width="${w}" height="16" rx="3"></rect>` +
      `<text x="${126 + w}" y="17" class="val">${esc(money(value(it), currency))}</text></g>`;
  }).join('');
  return `<svg class="bars" viewBox="0 0 560 ${items.length * h}" role="img"><title>${esc(title)}</title>${rows}</svg>`;
}

function sparkline(values, title) {
  const w = 160, h = 36, vs = values.map((v) => v ?? 0), max = Math.max(1, ...vs);
  const pts = vs.map((v, i) => `${(i / Math.max(1, vs.length - 1)) * w},${h - (v / max) * (h - 4) - 2}`).join(' ');
  return `<svg class="spark" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img"><title>${esc(title)}</title><polyline points="${pts}"></polyline></svg>`;
}

const dealLink = (id) => `<a href="/deals/${encodeURIComponent(id)}">${esc(id)}</a>`;
const repLink = (id) => `<a href="/reps/${encodeURIComponent(id)}">${esc(id)}</a>`;
// A figure that counts deals, linked to the list behind it (`/deals?…`, SPEC §5.1).
const dealsHref = (filters) => `/deals?${new URLSearchParams(Object.entries(filters).filter(([, v]) => v != null && v !== ''))}`;
const countLink = (n, filters) => `<a class="count" href="${esc(dealsHref(filters))}">${num(n)}</a>`;
/** `2026-06` as the deal list's period: its first and last day (both inclusive). */
const monthRange = (m) => {
  const [y, mo] = m.split('-').map(Number);
  return { from: `${m}-01`, to: `${m}-${String(new Date(Date.UTC(y, mo, 0)).getUTCDate()).padStart(2, '0')}` };
};
const card = (key, value) => `<div class="card" data-key="${key}"><div class="k">${esc(t(key))}</div><div class="v">${esc(value)}</div></div>`;

// --- page registry -----------------------------------------------------------------------
// Each page file (app.js's own pages below, and the files `dashboard/mod.rs` concatenates
// after this one) registers its URL pattern and adds its labels; `boot.js` routes.
const PAGES = [];
/** Registers a page: `pattern` matches the decoded path, `render(...groups)` returns HTML or `{html, after}`. */
const page = (pattern, render) => PAGES.push({ pattern, render });
/** Adds a page's labels to both languages. */
const labels = (en, zh) => { Object.assign(DICT.en, en); Object.assign(DICT.zh, zh); };

// --- pages -------------------------------------------------------------------------------
async function overview() {
  const p = await api('/v1/reports/pipeline');
  return `<h1>${esc(t('overview.title'))}</h1>
  <div class="cards">${card('open_count', num(p.open_count))}${card('open_amount', money(p.open_amount, p.currency))}${card('forecast', money(p.forecast, p.currency))}${card('won_this_month', money(p.won_this_month, p.currency))}${card('coverage', p.coverage == null ? '—' : num(p.coverage, 2) + '×')}</div>
  <section><h2>${esc(t('overview.stages'), p.currency)}</h2>${bars(p.stages, (s) => s.amount, (s) => s.stage, t('overview.stages'), p.currency)}
  ${table([{ label: 'stage', cell: (s) => esc(stageName(s.stage)) }, { label: 'count', num: 1, cell: (s) => countLink(s.count, { status: 'open', stage: s.stage }) }, { label: 'amount', num: 1, cell: (s) => money(s.amount, p.currency) }, { label: 'weighted', num: 1, cell: (s) => money(s.weighted, p.currency) }], p.stages)}</section>
  <section id="leaderboard"><h2>${esc(t('overview.leaderboard'))}</h2>${table([{ label: 'rep', cell: (r) => repLink(r.rep) }, { label: 'deals_won', num: 1, cell: (r) => num(r.deals_won) }, { label: 'won_amount', num: 1, cell: (r) => money(r.won_amount, p.currency) }, { label: 'open_amount', num: 1, cell: (r) => money(r.open_amount, p.currency) }], p.leaderboard)}</section>
  <div class="two"><section><h2>${esc(t('overview.stale'))} <a class="all" id="all-stale" href="/deals?view=stale">${num(p.stale.length)} · ${esc(t('deals.all'))}</a></h2>${table([{ label: 'deal', cell: (d) => dealLink(d.deal_id) }, { label: 'rep', cell: (d) => repLink(d.owner) }, { label: 'stage', cell: (d) => esc(stageName(d.stage)) }, { label: 'days_since_touch', num: 1, cell: (d) => num(d.days_since_touch, 1) }], p.stale.slice(0, 15))}</section>
  <section><h2>${esc(t('overview.stuck'))} <a class="all" id="all-stuck" href="/deals?view=stuck">${num(p.stuck.length)} · ${esc(t('deals.all'))}</a></h2>${table([{ label: 'deal', cell: (d) => dealLink(d.deal_id) }, { label: 'rep', cell: (d) => repLink(d.owner) }, { label: 'stage', cell: (d) => esc(stageName(d.stage)) }, { label: 'days_in_stage', num: 1, cell: (d) => num(d.days_in_stage, 1) }], p.stuck.slice(0, 15))}</section></div>
  <section><h2>${esc(t('overview.top'))}${p.top.length ? ` <a class="all" id="all-top" href="${esc(dealsHref({ status: 'open', min_amount: Math.min(...p.top.map((d) => d.amount)) }))}">${esc(t('deals.all'))}</a>` : ''}</h2>${table([{ label: 'deal', cell: (d) => dealLink(d.deal_id) }, { label: 'rep', cell: (d) => repLink(d.owner) }, { label: 'stage', cell: (d) => esc(stageName(d.stage)) }, { label: 'amount', num: 1, cell: (d) => money(d.amount, p.currency) }], p.top)}</section>`;
}

async function funnel() {
  const q = new URLSearchParams(location.search);
  const groupBy = q.get('group_by') || 'none';
  const params = new URLSearchParams({ group_by: groupBy });
  if (q.get('from')) params.set('from', q.get('from'));
  if (q.get('to')) params.set('to', q.get('to'));
  const f = await api(`/v1/reports/funnel?${params}`);
  const opts = ['none', 'rep', 'source', 'industry'].map((g) => `<option value="${g}" ${g === groupBy ? 'selected' : ''}>${esc(t('group.' + g))}</option>`).join('');
  // Over the whole history (no period) and per rep or for all, the deal list selects exactly
  // the deals a figure counts: link it. (The funnel's period is an opening cohort, which the
  // list's period, a closing time for closed deals, is not.)
  const linked = !q.get('from') && !q.get('to') && (groupBy === 'none' || groupBy === 'rep');
  const count = (n, g, filters) => (linked ? countLink(n, { ...filters, rep: groupBy === 'rep' ? g.key : '' }) : num(n));
  const groups = f.groups.map((g) => `<section><h2>${esc(g.key)} · ${esc(t('win_rate'))} ${pct(g.win_rate)}</h2>
    <p class="muted">${esc(t('opened'))} ${count(g.opened, g, {})} · ${esc(t('won'))} ${count(g.won, g, { status: 'won' })} · ${esc(t('lost'))} ${count(g.lost, g, { status: 'lost' })} · ${esc(t('open'))} ${count(g.open, g, { status: 'open' })}</p>
    ${table([{ label: 'stage', cell: (s) => esc(stageName(s.stage)) }, { label: 'reached', num: 1, cell: (s) => num(s.reached) }, { label: 'conversion_to_next', num: 1, cell: (s) => pct(s.conversion_to_next) }, { label: 'median_days_in_stage', num: 1, cell: (s) => num(s.median_days_in_stage, 1) }, { label: 'lost_here', num: 1, cell: (s) => count(s.lost_here, g, { status: 'lost', stage: s.stage }) }], g.stages)}</section>`).join('');
  return `<h1>${esc(t('funnel.title'))}</h1>
  <form class="filters" method="get" action="/funnel">
    <label>${esc(t('group_by'))} <select name="group_by">${opts}</select></label>
    <label>${esc(t('from'))} <input type="date" name="from" value="${esc(q.get('from') || '')}"></label>
    <label>${esc(t('to'))} <input type="date" name="to" value="${esc(q.get('to') || '')}"></label>
    <button type="submit">${esc(t('apply'))}</button></form>${groups}`;
}

async function rep(id) {
  // `?big_deal_amount=` on the page's URL is passed on; the report says the threshold it used.
  const big = new URLSearchParams(location.search).get('big_deal_amount');
  const r = await api(`/v1/reports/reps?months=12${big ? `&big_deal_amount=${encodeURIComponent(big)}` : ''}`);
  const me = r.reps.find((x) => x.rep === id);
  if (!me) throw new HttpError(404, 'no such rep');
  const s = me.series;
  const metric = (k) => s.map((m) => m[k]);
  return `<h1>${esc(t('rep.title'))}: ${esc(me.name || me.rep)} <span class="badge trend-${esc(me.trend)}" data-trend="${esc(me.trend)}">${esc(t('trend.' + me.trend))}</span></h1>
  <div class="cards">${['deals_won', 'won_amount', 'win_rate', 'big_deals_lost', 'active_customers'].map((k) => `<div class="card"><div class="k">${esc(t(k))}</div>${sparkline(metric(k), t(k))}</div>`).join('')}</div>
  ${table([{ label: 'month', cell: (m) => esc(m.month) }, { label: 'deals_won', num: 1, cell: (m) => countLink(m.deals_won, { rep: id, status: 'won', ...monthRange(m.month) }) }, { label: 'won_amount', num: 1, cell: (m) => money(m.won_amount, r.currency) }, { label: 'deals_lost', num: 1, cell: (m) => countLink(m.deals_lost, { rep: id, status: 'lost', ...monthRange(m.month) }) }, { label: 'big_deals_lost', num: 1, cell: (m) => countLink(m.big_deals_lost, { rep: id, status: 'lost', min_amount: r.big_deal_amount, ...monthRange(m.month) }) }, { label: 'win_rate', num: 1, cell: (m) => pct(m.win_rate) }, { label: 'active_customers', num: 1, cell: (m) => num(m.active_customers) }], s.slice().reverse())}`;
}

function stateTable(st, currency) {
  const rows = [['status', t('status.' + st.status)], ['stage', stageName(st.stage)], ['owner', st.owner], ['amount', money(st.amount, currency)], ['quotes', num(st.quotes)],
    ['competitors', (st.competitors || []).join(', ') || '—'], ['activities', num(st.activities)], ['last_touch_at', date(st.last_touch_at)], ['paid', money(st.paid, currency)]];
  return `<dl class="kv">${rows.map(([k, v]) => `<dt>${esc(t(k))}</dt><dd data-field="${k}">${esc(v)}</dd>`).join('')}</dl>`;
}

function analysisTable(a) {
  const v = (k) => {
    const x = a[k];
    if (x == null) return '—';
    if (k === 'won_deals_of_rep') return `${num(x.count)} · ${t('median_activities')} ${num(x.median_activities, 1)} · ${t('median_days_open')} ${num(x.median_days_open, 1)}`;
    if (k === 'lost_reason') return reasonName(x);
    if (k === 'stage_at_close') return stageName(x);
    if (k === 'outcome') return DICT.en['status.' + x] ? t('status.' + x) : x;
    const key = k === 'activities' ? kindName : stageName;
    if (typeof x === 'object') return Object.entries(x).map(([kk, vv]) => `${key(kk)} ${num(vv, 1)}`).join(', ');
    return typeof x === 'number' ? num(x, 1) : String(x);
  };
  const keys = ['outcome', 'lost_reason', 'competitor', 'stage_at_close', 'days_open', 'days_in_stage', 'stage_regressions', 'quote_revisions', 'activities', 'longest_silence_days', 'last_activity_before_close_days', 'won_deals_of_rep'];
  return `<dl class="kv">${keys.map((k) => `<dt>${esc(t(k))}</dt><dd>${esc(v(k))}</dd>`).join('')}</dl>`;
}

async function deal(id) {
  const [r, pipe, stream] = await Promise.all([api(`/v1/deals/${encodeURIComponent(id)}/replay`), api('/v1/reports/pipeline').catch(() => null),
    api(`/v1/streams/deal-${encodeURIComponent(id)}?limit=1000`).catch(() => ({ events: [] }))]);
  const steps = r.steps;
  const stages = pipe ? pipe.stages.map((s) => s.stage) : [];
  const forms = dealForms(r, stages, stream.events || []);
  const story = dealStory(r, stream.events || [], stages);
  const html = `<h1>${esc(t('deal.title'))}: ${esc(r.deal_id)}</h1>${story.html}
  <div class="replay"><section><label for="scrub">${esc(t('step'))} <output id="step-no">${steps.length}</output> / ${steps.length}</label>
    <input id="scrub" type="range" min="1" max="${steps.length}" value="${steps.length}">
    <ol class="steps">${steps.map((s, i) => { const x = story.step(i); return `<li data-i="${i}" class="${x.cls}"><time>${esc(date(s.occurred_at))}</time> <b>${esc(typeName(s.type))}</b> ${esc(stepSummary(s.type, story.data(s), s.summary))} <span class="muted">— ${esc(s.actor)}</span> ${x.html}</li>`; }).join('')}</ol></section>
  <aside><h2>${esc(t('status'))}</h2><div id="state"></div><h2>${esc(t('analysis'))}</h2>${analysisTable(r.analysis)}</aside></div>${forms.html}`;
  return { html, after: () => {
    forms.after();
    const scrub = document.getElementById('scrub');
    const show = () => {
      const i = Number(scrub.value) - 1;
      document.getElementById('state').innerHTML = stateTable(steps[i].state, r.currency);
      document.getElementById('step-no').textContent = String(i + 1);
      document.querySelectorAll('.steps li').forEach((li) => li.classList.toggle('current', Number(li.dataset.i) === i));
      document.querySelectorAll('.steps li').forEach((li) => li.classList.toggle('future', Number(li.dataset.i) > i));
    };
    scrub.addEventListener('input', show);
    document.querySelectorAll('.steps li').forEach((li) => li.addEventListener('click', () => { scrub.value = Number(li.dataset.i) + 1; show(); }));
    show();
  } };
}

async function customer(id) {
  const [c, tl, version] = await Promise.all([api(`/v1/customers/${encodeURIComponent(id)}`), api(`/v1/customers/${encodeURIComponent(id)}/timeline?limit=200`), streamVersion(`customer-${id}`)]);
  const forms = customerForms(c, version);
  const items = tl.events.map((e) => {
    const what = eventWhat(e);
    const link = e.stream.startsWith('deal-') ? ` · ${dealLink(e.stream.slice(5))}` : '';
    return `<li><time>${esc(date(e.occurred_at))}</time> <b>${esc(typeName(e.type))}</b> ${esc(what)}${link} <span class="muted">— ${esc(e.actor)}</span></li>`;
  }).join('');
  const html = `<h1>${esc(t('customer.title'))}: ${esc(c.name)}</h1>
  <p class="muted">${esc(c.industry || '')} · ${esc(c.region || '')} · ${esc(t('owner'))}: ${c.owner ? repLink(c.owner) : esc(t('nav.pool'))}</p>
  ${forms.html}<h2>${esc(t('timeline'))}</h2><ol class="steps">${items}</ol>`;
  return { html, after: forms.after };
}

/** The version of `stream`'s last event (`null` if it cannot be read). */
const streamVersion = (stream) => api(`/v1/streams/${encodeURIComponent(stream)}?limit=1`).then((p) => p.version, () => null);

/** The caller (`GET /v1/me`: role and subject), read once per page load. */
let WHO = null;
const whoAmI = async () => { if (!WHO) WHO = await api('/v1/me').catch(() => ({})); return WHO; };

async function pool() {
  const [p, who] = await Promise.all([api('/v1/pool'), whoAmI()]);
  const list = p.customers || p.in_pool || [];
  // A rep claims a customer for himself (`CustomerClaimed`); others assign, which is not here.
  const claim = who.role === 'rep'
    ? [{ label: 'pool.claim', cell: (c) => `<button type="button" class="claim" data-customer="${esc(c.customer_id)}" data-name="${esc(c.name || c.customer_id)}">${esc(t('pool.claim'))}</button>` }]
    : [];
  const html = `<h1>${esc(t('pool.title'))}</h1><p id="pool-msg" class="form-msg" role="status"></p>${table([{ label: 'customer', cell: (c) => `<a href="/customers/${encodeURIComponent(c.customer_id)}">${esc(c.name || c.customer_id)}</a>` }, { label: 'days_in_pool', num: 1, cell: (c) => num(c.days_in_pool, 1) }, ...claim], list)}`;
  const after = () => {
    const kept = sessionStorage.getItem('dealtrail.poolMsg');
    if (kept) {
      sessionStorage.removeItem('dealtrail.poolMsg');
      const { html: msg, ok } = JSON.parse(kept);
      const el = document.getElementById('pool-msg');
      el.innerHTML = msg;
      el.className = `form-msg ${ok ? 'ok' : 'error'}`;
    }
    document.querySelectorAll('button.claim').forEach((b) => b.addEventListener('click', async () => {
      b.disabled = true;
      const id = b.dataset.customer;
      const version = await streamVersion(`customer-${id}`);
      const failed = version == null
        ? t('notfound')
        : await appendEvent(`customer-${id}`, version, { type: 'CustomerClaimed', data: { rep: who.subject } });
      const msg = failed ? esc(failed) : `${esc(fill(t('pool.claimed'), { name: b.dataset.name }))} ${customerLink(id, b.dataset.name)}`;
      sessionStorage.setItem('dealtrail.poolMsg', JSON.stringify({ html: msg, ok: !failed }));
      await render();
    }));
  };
  return { html, after };
}

page(/^\/$/, overview);
page(/^\/funnel$/, funnel);
page(/^\/pool$/, pool);
page(/^\/reps\/(.+)$/, rep);
page(/^\/deals\/(.+)$/, deal);
page(/^\/customers\/(.+)$/, customer);
