// dealtrail dashboard: the replay page's story — not only the steps: the stage path drawn over
// time (moves back in red), the longest silence highlighted in the timeline, the discount
// over the quotes, where the competitor first appeared, and the deal's figures beside the
// median of the same rep's won deals (deviations marked). Activity steps show direction,
// duration and outcome, read from the deal's stream (`GET /v1/streams/deal-…`).

labels({
  'story.title': 'How it went', 'story.path': 'Stage path over time', 'story.silence': '{days} days of silence before this step',
  'story.discount': 'Quotes: {first} → {last} ({pct} in all, {n} quotes)', 'story.noquotes': 'No quote issued.',
  'story.competitor': '{name} first appeared on {date}, {days} days after opening', 'story.nocompetitor': 'No competitor noted.',
  'story.vs': 'Against the same rep\'s {n} won deals', 'story.this': 'This deal', 'story.median': 'Median of won deals',
  'story.deviation': 'deviation', 'story.first_competitor': 'competitor appears', 'story.longest': 'longest silence',
  duration: 'duration', min: 'min',
}, {
  'story.title': '商机经过', 'story.path': '阶段随时间的变化', 'story.silence': '此步之前沉默了 {days} 天',
  'story.discount': '报价：{first} → {last}（累计 {pct}，共 {n} 次报价）', 'story.noquotes': '未报价。',
  'story.competitor': '{name} 于 {date} 首次出现，在创建后第 {days} 天', 'story.nocompetitor': '未记录竞争对手。',
  'story.vs': '与同一销售的 {n} 个赢单相比', 'story.this': '本商机', 'story.median': '赢单中位数',
  'story.deviation': '偏差', 'story.first_competitor': '竞争对手出现', 'story.longest': '最长沉默',
  duration: '时长', min: '分钟',
});

const DAY_MS = 86400000;

/** The story of replay `r`; `events` are the deal stream's events, `stages` the pipeline's ids. */
function dealStory(r, events, stages) {
  const steps = r.steps;
  const byPos = new Map(events.map((e) => [e.position, e]));
  const at = (s) => new Date(s.occurred_at).getTime();
  const start = at(steps[0]);
  const end = Math.max(at(steps[steps.length - 1]), start + DAY_MS);
  // Stage order: the pipeline's, then any other stage in order of appearance.
  const order = stages.slice();
  steps.forEach((s) => { if (!order.includes(s.state.stage)) order.push(s.state.stage); });
  // The stage path: one point per stage change, a step line (later stages higher); moves back drawn red.
  const w = 640, h = 28 * order.length + 30, x = (tm) => 90 + ((tm - start) / (end - start)) * (w - 110), y = (st) => 14 + 28 * (order.length - 1 - order.indexOf(st));
  const segs = [];
  let prev = { t: start, stage: steps[0].state.stage };
  steps.forEach((s) => {
    if (s.state.stage !== prev.stage) {
      const back = order.indexOf(s.state.stage) < order.indexOf(prev.stage);
      segs.push(`<line x1="${x(prev.t)}" y1="${y(prev.stage)}" x2="${x(at(s))}" y2="${y(prev.stage)}" class="stay"></line>`);
      segs.push(`<line x1="${x(at(s))}" y1="${y(prev.stage)}" x2="${x(at(s))}" y2="${y(s.state.stage)}" class="${back ? 'back' : 'move'}"><title>${esc(stageName(prev.stage))} → ${esc(stageName(s.state.stage))}</title></line>`);
      prev = { t: at(s), stage: s.state.stage };
    }
  });
  const lastState = steps[steps.length - 1].state;
  segs.push(`<line x1="${x(prev.t)}" y1="${y(prev.stage)}" x2="${x(end)}" y2="${y(prev.stage)}" class="stay"></line>`);
  if (lastState.status !== 'open') segs.push(`<circle cx="${x(end)}" cy="${y(prev.stage)}" r="6" class="end-${esc(lastState.status)}"><title>${esc(t('status.' + lastState.status))}</title></circle>`);
  const grid = order.map((st) => `<text x="0" y="${y(st) + 4}" class="lbl">${esc(stageName(st))}</text><line x1="90" y1="${y(st)}" x2="${w - 20}" y2="${y(st)}" class="grid"></line>`).join('');
  const axis = `<text x="90" y="${h - 4}" class="lbl">${esc(steps[0].occurred_at.slice(0, 10))}</text><text x="${w - 20}" y="${h - 4}" class="lbl" text-anchor="end">${esc(new Date(end).toISOString().slice(0, 10))}</text>`;
  const path = `<svg class="stagepath" viewBox="0 0 ${w} ${h}" role="img"><title>${esc(t('story.path'))}</title>${grid}${segs.join('')}${axis}</svg>`;

  // The longest silence while open: the largest gap between consecutive steps.
  let silence = { i: -1, days: 0 };
  for (let i = 1; i < steps.length; i += 1) {
    if (steps[i - 1].state.status !== 'open') continue;
    const d = (at(steps[i]) - at(steps[i - 1])) / DAY_MS;
    if (d > silence.days) silence = { i, days: d };
  }
  // Quotes and their discount, and the competitor's first appearance.
  const quotes = steps.filter((s) => s.type === 'QuoteIssued').map((s) => byPos.get(s.position)).filter(Boolean);
  const discount = quotes.length
    ? fill(t('story.discount'), { first: money(quotes[0].data.amount), last: money(quotes[quotes.length - 1].data.amount), n: quotes.length,
      pct: pct(quotes[0].data.amount ? (quotes[quotes.length - 1].data.amount - quotes[0].data.amount) / quotes[0].data.amount : null) })
    : t('story.noquotes');
  const firstComp = steps.findIndex((s) => s.state.competitors && s.state.competitors.length > 0);
  const competitor = firstComp >= 0
    ? fill(t('story.competitor'), { name: steps[firstComp].state.competitors[0], date: steps[firstComp].occurred_at.slice(0, 10), days: num((at(steps[firstComp]) - start) / DAY_MS, 0) })
    : t('story.nocompetitor');
  // The deal against the same rep's won deals.
  const a = r.analysis;
  const wonOfRep = a.won_deals_of_rep;
  const activities = Object.values(a.activities || {}).reduce((s, n) => s + n, 0);
  const dev = (mine, median) => {
    if (median == null || median === 0 || mine == null) return '';
    const d = (mine - median) / median;
    return `<span class="${Math.abs(d) >= 0.5 ? 'dev-big' : 'dev'}" data-deviation="${d.toFixed(2)}">${d >= 0 ? '+' : ''}${pct(d)}</span>`;
  };
  const vs = wonOfRep && wonOfRep.count
    ? `<h3>${esc(fill(t('story.vs'), { n: wonOfRep.count }))}</h3><table class="vs"><thead><tr><th></th><th class="num">${esc(t('story.this'))}</th><th class="num">${esc(t('story.median'))}</th><th class="num">${esc(t('story.deviation'))}</th></tr></thead><tbody>
      <tr><th scope="row">${esc(t('activities'))}</th><td class="num">${num(activities)}</td><td class="num">${num(wonOfRep.median_activities, 1)}</td><td class="num">${dev(activities, wonOfRep.median_activities)}</td></tr>
      <tr><th scope="row">${esc(t('days_open'))}</th><td class="num">${num(a.days_open, 1)}</td><td class="num">${num(wonOfRep.median_days_open, 1)}</td><td class="num">${dev(a.days_open, wonOfRep.median_days_open)}</td></tr></tbody></table>`
    : '';
  const html = `<section id="story"><h2>${esc(t('story.title'))}</h2>${path}
    <ul class="facts"><li id="story-discount">${esc(discount)}</li><li id="story-competitor">${esc(competitor)}</li>
    ${silence.i > 0 && silence.days >= 0.05 ? `<li id="story-silence">${esc(t('story.longest'))}: ${num(silence.days, 1)} d</li>` : ''}</ul>${vs}</section>`;
  /** Extra HTML and classes for step `i` of the timeline. */
  const step = (i) => {
    const s = steps[i];
    const e = byPos.get(s.position);
    const notes = [];
    const cls = [];
    if (i === silence.i && silence.days >= 0.05) { cls.push('silence'); notes.push(`<span class="note silence-note">${esc(fill(t('story.silence'), { days: num(silence.days, 1) }))}</span>`); }
    if (i === firstComp) { cls.push('first-competitor'); notes.push(`<span class="note">${esc(t('story.first_competitor'))}</span>`); }
    if (e && e.type === 'ActivityLogged') {
      const d = e.data;
      const bits = [d.direction ? t('direction.' + d.direction) : null, d.duration_s != null ? `${num(d.duration_s / 60, 0)} ${t('min')}` : null, d.outcome || null].filter(Boolean);
      if (bits.length) notes.push(`<span class="note activity-detail">${esc(bits.join(' · '))}</span>`);
    }
    if (e && e.type === 'QuoteIssued' && e.data.discount_pct != null) notes.push(`<span class="note">−${esc(num(e.data.discount_pct, 1))}%</span>`);
    return { cls: cls.join(' '), html: notes.join(' ') };
  };
  /** The `data` of step `s`'s event (from the deal's stream), if read. */
  const data = (s) => (byPos.get(s.position) || {}).data;
  return { html, step, data };
}
