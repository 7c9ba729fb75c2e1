// dealtrail dashboard: the deal list page `/deals?…` (SPEC §5.1) and the header's search box.
// The filters are the query parameters of `GET /v1/deals`, so a page's URL is the list's
// definition: every figure elsewhere that counts deals links here with the same filters
// (`dealsHref`). `/deals?view=stale|stuck` shows the pipeline's stale or stuck deals.

labels({
  'deals.title': 'Deals', 'deals.stale': 'Stale deals', 'deals.stuck': 'Stuck deals',
  title: 'Title', opened_at: 'Opened', closed_at: 'Closed', reason: 'Reason', team: 'Team',
  min_amount: 'Minimum amount', q: 'Search', any: 'Any', period: 'Period', csv: 'Download CSV',
  'deals.first': 'First page', 'deals.next': 'Next page', 'deals.shown': 'deals shown',
  'deals.more': 'more on the next page', 'deals.end': 'end of the list', per_page: 'Per page',
  'search.placeholder': 'Deal or customer…', 'search.label': 'Find a deal or customer',
  'deals.all': 'see the list', last_touch_at_short: 'Last touch',
}, {
  'deals.title': '商机列表', 'deals.stale': '停滞商机', 'deals.stuck': '卡住的商机',
  title: '名称', opened_at: '创建', closed_at: '关闭', reason: '原因', team: '团队',
  min_amount: '最低金额', q: '搜索', any: '全部', period: '期间', csv: '下载 CSV',
  'deals.first': '第一页', 'deals.next': '下一页', 'deals.shown': '个商机',
  'deals.more': '下一页还有', 'deals.end': '已到末尾', per_page: '每页',
  'search.placeholder': '商机或客户…', 'search.label': '查找商机或客户',
  'deals.all': '查看列表', last_touch_at_short: '最近跟进',
});

const DEAL_FILTERS = ['status', 'rep', 'team', 'customer_id', 'stage', 'reason', 'competitor', 'from', 'to', 'min_amount', 'q'];

const customerLink = (id, name) => `<a href="/customers/${encodeURIComponent(id)}">${esc(name || id)}</a>`;

/** The CSV text of `rows` under `cols` (`csv(row)` gives a cell's plain value). */
function toCsv(cols, rows) {
  const cell = (v) => {
    const s = String(v ?? '');
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [cols.map((c) => cell(c.key)).join(',')].concat(rows.map((r) => cols.map((c) => cell(c.csv(r))).join(',')));
  return lines.join('\r\n') + '\r\n';
}

/** A table whose column heads sort the rows (`data-sort`), and a CSV of the rows as shown. */
function sortableTable(cols, rows, id) {
  let sorted = rows.slice();
  let by = null;
  let dir = 1;
  const body = () => sorted.map((r) => `<tr data-id="${esc(r.id || r.deal_id || '')}">${cols.map((c) => `<td class="${c.num ? 'num' : ''}">${c.cell(r)}</td>`).join('')}</tr>`).join('');
  const head = cols.map((c) => `<th scope="col" class="${c.num ? 'num' : ''}" aria-sort="none"><button type="button" class="sort" data-sort="${c.key}">${esc(t(c.label || c.key))}</button></th>`).join('');
  const html = rows.length
    ? `<div class="scroll"><table id="${id}"><thead><tr>${head}</tr></thead><tbody>${body()}</tbody></table></div>`
    : `<p class="muted" id="${id}-empty">${esc(t('none'))}</p>`;
  const after = () => {
    const table = document.getElementById(id);
    if (!table) return;
    table.querySelectorAll('button.sort').forEach((b) => b.addEventListener('click', () => {
      const col = cols.find((c) => c.key === b.dataset.sort);
      dir = by === col.key ? -dir : 1;
      by = col.key;
      const v = (r) => col.csv(r);
      sorted = rows.slice().sort((a, z) => {
        const x = v(a), y = v(z);
        if (x == null || x === '') return 1;
        if (y == null || y === '') return -1;
        return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * dir;
      });
      table.querySelector('tbody').innerHTML = body();
      table.querySelectorAll('th').forEach((th) => th.setAttribute('aria-sort', 'none'));
      b.parentElement.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
    }));
  };
  return { html, after, rows: () => sorted };
}

/** Offers `text` as a download named `name`. */
function download(name, text) {
  const url = URL.createObjectURL(new Blob(['\ufeff' + text], { type: 'text/csv;charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

const DEAL_COLUMNS = [
  { key: 'id', label: 'deal', cell: (d) => dealLink(d.id), csv: (d) => d.id },
  { key: 'title', cell: (d) => esc(d.title), csv: (d) => d.title },
  { key: 'customer', cell: (d) => customerLink(d.customer_id, d.customer_name), csv: (d) => d.customer_name || d.customer_id },
  { key: 'owner', cell: (d) => repLink(d.owner), csv: (d) => d.owner },
  { key: 'status', cell: (d) => `<span class="st st-${esc(d.status)}">${esc(t('status.' + d.status))}</span>`, csv: (d) => d.status },
  { key: 'stage', cell: (d) => esc(stageName(d.stage)), csv: (d) => d.stage },
  { key: 'amount', num: 1, cell: (d) => money(d.amount, d.currency), csv: (d) => d.amount },
  { key: 'opened_at', cell: (d) => esc(day(d.opened_at)), csv: (d) => d.opened_at },
  { key: 'closed_at', cell: (d) => esc(day(d.closed_at)), csv: (d) => d.closed_at || '' },
  { key: 'reason', cell: (d) => esc(d.reason ? reasonName(d.reason) : ''), csv: (d) => d.reason || '' },
  { key: 'competitor', cell: (d) => esc(d.competitor || ''), csv: (d) => d.competitor || '' },
];

const day = (s) => (s ? s.slice(0, 10) : '—');

/** Loads a report for the filter controls' choices; a refusal (role) leaves them free text. */
const optional = (path) => api(path).catch(() => null);

async function dealsPage() {
  const q = new URLSearchParams(location.search);
  const view = q.get('view');
  if (view === 'stale' || view === 'stuck') return pipelineList(view);
  const params = new URLSearchParams();
  DEAL_FILTERS.forEach((k) => { if (q.get(k)) params.set(k, q.get(k)); });
  params.set('limit', q.get('limit') || '100');
  if (q.get('cursor')) params.set('cursor', q.get('cursor'));
  const [list, reps, pipe, wl] = await Promise.all([
    api(`/v1/deals?${params}`), optional('/v1/reports/reps?months=3'), optional('/v1/reports/pipeline'), optional('/v1/reports/win-loss'),
  ]);
  const v = (k) => esc(q.get(k) || '');
  const select = (name, choices, label, fallback = '') => `<label>${esc(t(label || name))} <select name="${name}">${fallback ? '' : `<option value="">${esc(t('any'))}</option>`}${choices.map(([val, text]) => `<option value="${esc(val)}" ${val === (q.get(name) || fallback) ? 'selected' : ''}>${esc(text)}</option>`).join('')}</select></label>`;
  const repRows = reps ? reps.reps : [];
  const teams = [...new Set(repRows.map((r) => r.team).filter(Boolean))].sort();
  const stages = pipe ? pipe.stages.map((s) => s.stage) : [];
  const datalist = (id, values) => `<datalist id="${id}">${values.map((x) => `<option value="${esc(x)}">`).join('')}</datalist>`;
  const form = `<form class="filters" id="deal-filters" method="get" action="/deals">
    ${select('status', ['open', 'won', 'lost'].map((s) => [s, t('status.' + s)]))}
    ${repRows.length ? select('rep', repRows.map((r) => [r.rep, r.name || r.rep])) : `<label>${esc(t('rep'))} <input name="rep" value="${v('rep')}"></label>`}
    ${teams.length ? select('team', teams.map((x) => [x, x])) : `<label>${esc(t('team'))} <input name="team" value="${v('team')}"></label>`}
    ${stages.length ? select('stage', stages.map((s) => [s, s])) : `<label>${esc(t('stage'))} <input name="stage" value="${v('stage')}"></label>`}
    <label>${esc(t('reason'))} <input name="reason" list="reasons" value="${v('reason')}" size="10"></label>
    <label>${esc(t('competitor'))} <input name="competitor" list="competitors" value="${v('competitor')}" size="10"></label>
    <fieldset class="period"><legend>${esc(t('period'))}</legend>
      <label>${esc(t('from'))} <input type="date" name="from" value="${v('from').slice(0, 10)}"></label>
      <label>${esc(t('to'))} <input type="date" name="to" value="${v('to').slice(0, 10)}"></label></fieldset>
    <label>${esc(t('min_amount'))} <input type="number" name="min_amount" min="0" step="1000" value="${v('min_amount')}" size="8"></label>
    <label>${esc(t('q'))} <input type="search" name="q" value="${v('q')}"></label>
    ${q.get('customer_id') ? `<input type="hidden" name="customer_id" value="${v('customer_id')}">` : ''}
    ${select('limit', ['50', '100', '500', '1000'].map((n) => [n, n]), 'per_page', '100')}
    <button type="submit">${esc(t('apply'))}</button>
    ${datalist('reasons', wl ? wl.by_reason.map((r) => r.reason) : [])}${datalist('competitors', wl ? wl.by_competitor.map((c) => c.competitor) : [])}
  </form>`;
  const table = sortableTable(DEAL_COLUMNS, list.deals, 'deal-list');
  const first = new URLSearchParams(params);
  first.delete('cursor');
  const next = new URLSearchParams(params);
  if (list.next_cursor) next.set('cursor', list.next_cursor);
  const nav = `<p class="paging"><span id="deal-count" data-count="${list.deals.length}">${num(list.deals.length)} ${esc(t('deals.shown'))}</span> ·
    ${list.next_cursor ? `<a id="next-page" href="/deals?${next}">${esc(t('deals.next'))} →</a>` : `<span class="muted">${esc(t('deals.end'))}</span>`}
    ${q.get('cursor') ? ` · <a id="first-page" href="/deals?${first}">${esc(t('deals.first'))}</a>` : ''}
    · <button type="button" id="csv">${esc(t('csv'))}</button></p>`;
  const html = `<h1>${esc(t('deals.title'))}${q.get('customer_id') ? ` · ${customerLink(q.get('customer_id'))}` : ''}</h1>${form}${nav}${table.html}`;
  return { html, after: () => {
    table.after();
    // Blank fields are left out of the URL, so it stays the list's definition.
    document.getElementById('deal-filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const f = new URLSearchParams(new FormData(ev.target));
      const keep = new URLSearchParams();
      f.forEach((val, k) => { if (val !== '' && !(k === 'limit' && val === '100')) keep.set(k, val); });
      location.href = `/deals?${keep}`;
    });
    document.getElementById('csv').addEventListener('click', () => download('deals.csv', toCsv(DEAL_COLUMNS, table.rows())));
  } };
}

/** The pipeline's stale or stuck open deals, all of them (the overview shows the first 15). */
async function pipelineList(view) {
  const p = await api('/v1/reports/pipeline');
  const rows = p[view];
  const cols = [
    { key: 'deal_id', label: 'deal', cell: (d) => dealLink(d.deal_id), csv: (d) => d.deal_id },
    { key: 'owner', cell: (d) => repLink(d.owner), csv: (d) => d.owner },
    { key: 'stage', cell: (d) => esc(stageName(d.stage)), csv: (d) => d.stage },
  ].concat(view === 'stale'
    ? [{ key: 'amount', num: 1, cell: (d) => money(d.amount, d.currency), csv: (d) => d.amount },
      { key: 'last_touch_at', label: 'last_touch_at_short', cell: (d) => esc(day(d.last_touch_at)), csv: (d) => d.last_touch_at },
      { key: 'days_since_touch', num: 1, cell: (d) => num(d.days_since_touch, 1), csv: (d) => d.days_since_touch }]
    : [{ key: 'days_in_stage', num: 1, cell: (d) => num(d.days_in_stage, 1), csv: (d) => d.days_in_stage }]);
  const table = sortableTable(cols, rows, 'deal-list');
  const html = `<h1>${esc(t('deals.' + view))}</h1><p class="paging"><span id="deal-count" data-count="${rows.length}">${num(rows.length)} ${esc(t('deals.shown'))}</span> · <button type="button" id="csv">${esc(t('csv'))}</button></p>${table.html}`;
  return { html, after: () => {
    table.after();
    document.getElementById('csv').addEventListener('click', () => download(`deals-${view}.csv`, toCsv(cols, table.rows())));
  } };
}

// The header's search box: a deal id opens its replay, a customer id its page; anything else
// lists the deals whose id, title or customer name contains it.
async function search(term) {
  const found = async (path) => {
    const res = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
    return res.ok;
  };
  const id = encodeURIComponent(term);
  if (/^[A-Za-z0-9_.:-]{1,64}$/.test(term)) {
    if (await found(`/v1/deals/${id}`)) return `/deals/${id}`;
    if (await found(`/v1/customers/${id}`)) return `/customers/${id}`;
  }
  return `/deals?${new URLSearchParams({ q: term })}`;
}

document.getElementById('search').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const term = document.getElementById('search-q').value.trim();
  if (term) location.href = await search(term);
});

page(/^\/deals$/, dealsPage);
