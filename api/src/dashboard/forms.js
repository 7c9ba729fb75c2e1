// dealtrail dashboard: the rep's hands on a deal page — log an activity, move the stage, mark
// the deal won or lost — and on a customer's page, log an activity. Each form appends one event through `POST /v1/streams/deal-…/events`
// with the version of the deal's last event as `expected_version`, so an edit made meanwhile
// by somebody else is a 409, told in words next to the form; a rule's 422 likewise. After an
// append the page is drawn again from the log and the read model.

labels({
  'forms.title': 'Record', 'forms.activity': 'Log an activity', 'forms.stage': 'Move the stage', 'forms.close': 'Close the deal',
  kind: 'Kind', direction: 'Direction', 'direction.inbound': 'inbound', 'direction.outbound': 'outbound',
  duration_min: 'Duration (minutes)', summary: 'Summary', occurred_at: 'When', save: 'Save', note: 'Note',
  'close.won': 'Won', 'close.lost': 'Lost', won_amount_field: 'Won amount',
  'forms.saved': 'Saved.', 'forms.conflict': 'Someone changed this deal while you were writing (it is now at version {actual}, the form expected {expected}). The page now shows the latest; please check and send again.',
  'forms.refused': 'Not recorded: {detail}', 'forms.denied': 'You may not record this: {detail}',
  'forms.quote': 'Record a quote', quote_id: 'Quote id', discount_pct: 'Discount (%)',
  'forms.payment': 'Record a payment', 'pay.unscheduled': 'not tied to an installment', 'pay.left': '{left} left',
  'pool.claim': 'Claim', 'pool.claimed': 'Claimed {name}: it is yours now.',
}, {
  'forms.title': '记录', 'forms.activity': '记录一次活动', 'forms.stage': '推进阶段', 'forms.close': '关闭商机',
  kind: '类型', direction: '方向', 'direction.inbound': '呼入', 'direction.outbound': '呼出',
  duration_min: '时长（分钟）', summary: '摘要', occurred_at: '时间', save: '保存', note: '说明',
  'close.won': '赢单', 'close.lost': '输单', won_amount_field: '赢单金额',
  'forms.saved': '已保存。', 'forms.conflict': '在您填写时，其他人修改了这个商机（当前版本 {actual}，表单基于版本 {expected}）。页面已刷新为最新内容，请核对后重新提交。',
  'forms.refused': '未记录：{detail}', 'forms.denied': '您无权记录：{detail}',
  'forms.quote': '记录报价', quote_id: '报价编号', discount_pct: '折扣（%）',
  'forms.payment': '记录回款', 'pay.unscheduled': '不对应任何分期', 'pay.left': '尚余 {left}',
  'pool.claim': '领取', 'pool.claimed': '已领取 {name}，现在归您跟进。',
});

const fill = (text, vars) => text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));

/** Appends `event` to `stream` expecting `version`; resolves to null, or the words for the failure. */
async function appendEvent(stream, version, event) {
  const res = await fetch(`/v1/streams/${encodeURIComponent(stream)}/events`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token()}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ expected_version: version, events: [event] }),
  });
  if (res.ok) return null;
  let p = {};
  try { p = await res.json(); } catch (_) { /* not JSON */ }
  if (res.status === 409 && p.actual !== undefined) return fill(t('forms.conflict'), { actual: p.actual ?? '—', expected: version });
  if (res.status === 403 || res.status === 404) return fill(t('forms.denied'), { detail: p.detail || res.statusText });
  return fill(t('forms.refused'), { detail: p.detail || res.statusText });
}

/** `datetime-local` value for now (UTC, as the dashboard shows times). */
const nowLocal = () => new Date().toISOString().slice(0, 16);

const opt = (v, text, sel) => `<option value="${esc(v)}" ${sel ? 'selected' : ''}>${esc(text)}</option>`;

function activityFormHtml() {
  return `<form id="activity-form" class="record"><h3>${esc(t('forms.activity'))}</h3>
    <label>${esc(t('kind'))} <select name="kind">${KINDS.map((k) => opt(k, t('kind.' + k), k === 'call')).join('')}</select></label>
    <label>${esc(t('direction'))} <select name="direction">${opt('', '—')}${opt('outbound', t('direction.outbound'))}${opt('inbound', t('direction.inbound'))}</select></label>
    <label>${esc(t('duration_min'))} <input name="duration_min" type="number" min="0" step="1" size="5"></label>
    <label>${esc(t('outcome'))} <input name="outcome" size="14"></label>
    <label class="wide">${esc(t('summary'))} <input name="summary"></label>
    <label>${esc(t('occurred_at'))} (UTC) <input name="occurred_at" type="datetime-local" value="${nowLocal()}"></label>
    <button type="submit">${esc(t('save'))}</button><p class="form-msg" role="status"></p></form>`;
}

/** The `ActivityLogged` the activity form describes, for `rep`. */
function activityEvent(f, rep) {
  const data = { kind: f.get('kind'), rep };
  if (f.get('direction')) data.direction = f.get('direction');
  if (f.get('duration_min')) data.duration_s = Math.round(Number(f.get('duration_min')) * 60);
  if (f.get('outcome').trim()) data.outcome = f.get('outcome').trim();
  if (f.get('summary').trim()) data.summary = f.get('summary').trim();
  // Left at its default ("now", to the minute), the time is the moment of saving.
  const field = document.querySelector('#activity-form input[name=occurred_at]');
  const typed = f.get('occurred_at') && f.get('occurred_at') !== field.defaultValue;
  const at = typed ? new Date(`${f.get('occurred_at')}:00Z`) : new Date();
  return { type: 'ActivityLogged', occurred_at: at.toISOString().replace('.000Z', 'Z'), data };
}

/** Sends form `id`'s event (`build(formData)`, or the words of a mistake) to `stream` at `version`, then redraws. */
function wireForm(id, stream, version, build) {
  const form = document.getElementById(id);
  if (!form) return;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const msg = form.querySelector('.form-msg');
    const event = build(new FormData(form));
    if (typeof event === 'string') { msg.textContent = event; msg.className = 'form-msg error'; return; }
    form.querySelector('button').disabled = true;
    const failed = await appendEvent(stream, version, event);
    // The words stay above the page drawn again: the deal as it is now.
    sessionStorage.setItem('dealtrail.formMsg', JSON.stringify(failed ? { id, text: failed } : { id, text: t('forms.saved'), ok: true }));
    if (!failed) forgetRequest();
    await render();
  });
}

/** Shows the message a form left before the page was drawn again. */
function showFormMessage() {
  const kept = sessionStorage.getItem('dealtrail.formMsg');
  if (!kept) return;
  sessionStorage.removeItem('dealtrail.formMsg');
  const { id, text, ok } = JSON.parse(kept);
  const el = document.querySelector(`#${id} .form-msg`) || document.querySelector('#record .form-msg');
  if (el) { el.textContent = text; el.className = `form-msg ${ok ? 'ok' : 'error'}`; }
}

/** The activity form on a customer's page (`version`: the customer stream's last event). */
function customerForms(c, version) {
  if (!c.owner || version == null) return { html: '', after: () => {} };
  return {
    html: `<section id="record"><h2>${esc(t('forms.title'))}</h2><div class="forms">${activityFormHtml()}</div></section>`,
    after: () => { wireForm('activity-form', `customer-${c.customer_id}`, version, (f) => activityEvent(f, c.owner)); showFormMessage(); focusRequested(); },
  };
}

/** The installments of a deal's `events`: `{id, amount, received}` in order of scheduling. */
function installments(events) {
  const out = new Map();
  events.forEach((e) => {
    if (e.type === 'PaymentScheduled') out.set(e.data.installment_id, { id: e.data.installment_id, amount: e.data.amount, received: 0 });
  });
  events.forEach((e) => {
    const i = e.type === 'PaymentReceived' && out.get(e.data.installment_id);
    if (i) i.received += e.data.amount;
  });
  return [...out.values()];
}

/** What is still owed on installment `i` (never below zero, to the cent). */
const owedOn = (i) => Math.max(0, Math.round((i.amount - i.received) * 100) / 100);

/** The payment form of a won deal (its installments still owed, in order). */
function paymentFormHtml(owed) {
  const open = owed.filter((i) => owedOn(i) > 0);
  const first = open[0];
  return `<form id="payment-form" class="record"><h3>${esc(t('forms.payment'))}</h3>
    <label>${esc(t('installment'))} <select name="installment_id">${open.map((i) => opt(i.id, `${i.id} · ${fill(t('pay.left'), { left: money(owedOn(i)) })}`)).join('')}${opt('', t('pay.unscheduled'), !first)}</select></label>
    <label>${esc(t('amount'))} <input name="amount" type="number" min="0.01" step="0.01" required value="${first ? owedOn(first) : ''}"></label>
    <button type="submit">${esc(t('save'))}</button><p class="form-msg" role="status"></p></form>`;
}

/** Drops the form request from the URL once it is done (a redraw must not open it again). */
function forgetRequest() {
  const u = new URL(location.href);
  if (!u.searchParams.has('record')) return;
  u.searchParams.delete('record');
  u.searchParams.delete('installment');
  history.replaceState(null, '', u);
}

/** Opens the form the URL asks for (`?record=payment&installment=I2`, from Today) at its place. */
function focusRequested(owed) {
  const q = new URLSearchParams(location.search);
  const form = document.getElementById(`${q.get('record')}-form`);
  if (!form) return;
  const inst = q.get('installment');
  const wanted = inst && (owed || []).find((i) => i.id === inst);
  if (wanted && form.elements.installment_id) {
    form.elements.installment_id.value = inst;
    form.elements.amount.value = owedOn(wanted);
  }
  form.classList.add('requested');
  form.scrollIntoView({ block: 'center' });
  const field = form.querySelector('select, input');
  if (field) field.focus();
}

/** The forms under a deal's replay; `r` is the replay, `stages` the pipeline's stage ids, `events` the deal's stream. */
function dealForms(r, stages, events) {
  const last = r.steps[r.steps.length - 1];
  const st = last.state;
  const version = last.version;
  const stream = `deal-${r.deal_id}`;
  const open = st.status === 'open';
  const activity = activityFormHtml();
  const stage = open ? `<form id="stage-form" class="record"><h3>${esc(t('forms.stage'))}</h3>
    <label>${esc(t('stage'))} <select name="to">${stages.filter((s) => s !== st.stage).map((s) => opt(s, stageName(s))).join('')}</select></label>
    <button type="submit">${esc(t('save'))}</button><p class="form-msg" role="status"></p></form>` : '';
  const close = open ? `<form id="close-form" class="record"><h3>${esc(t('forms.close'))}</h3>
    <label>${esc(t('outcome'))} <select name="outcome">${opt('lost', t('close.lost'))}${opt('won', t('close.won'))}</select></label>
    <label>${esc(t('won_amount_field'))} <input name="amount" type="number" min="0" step="0.01" value="${esc(st.amount)}"></label>
    <label>${esc(t('reason'))} <input name="reason" list="close-reasons" size="12"></label>
    <label>${esc(t('competitor'))} <input name="competitor" size="12"></label>
    <label class="wide">${esc(t('note'))} <input name="note"></label>
    <datalist id="close-reasons">${['price', 'timing', 'no_budget', 'no_decision', 'feature_gap'].map((x) => `<option value="${x}">`).join('')}</datalist>
    <button type="submit">${esc(t('save'))}</button><p class="form-msg" role="status"></p></form>` : '';
  const quote = open ? `<form id="quote-form" class="record"><h3>${esc(t('forms.quote'))}</h3>
    <label>${esc(t('quote_id'))} <input name="quote_id" required size="10" value="${esc(`Q-${r.deal_id}-${(st.quotes || 0) + 1}`)}"></label>
    <label>${esc(t('amount'))} <input name="amount" type="number" min="0" step="0.01" required value="${esc(st.amount)}"></label>
    <label>${esc(t('discount_pct'))} <input name="discount_pct" type="number" min="0" max="100" step="0.1" size="5"></label>
    <button type="submit">${esc(t('save'))}</button><p class="form-msg" role="status"></p></form>` : '';
  const owed = installments(events || []);
  const payment = st.status === 'won' ? paymentFormHtml(owed) : '';
  const html = `<section id="record"><h2>${esc(t('forms.title'))}</h2><div class="forms">${activity}${stage}${quote}${close}${payment}</div></section>`;
  const after = () => {
    wireForm('activity-form', stream, version, (f) => activityEvent(f, st.owner));
    wireForm('stage-form', stream, version, (f) => ({ type: 'DealStageChanged', data: { from: st.stage, to: f.get('to') } }));
    wireForm('close-form', stream, version, (f) => {
      if (f.get('outcome') === 'won') return { type: 'DealWon', data: { amount: Number(f.get('amount')) } };
      if (!f.get('reason').trim()) return `${t('reason')}: ${t('none')}`;
      const data = { reason: f.get('reason').trim() };
      if (f.get('competitor').trim()) data.competitor = f.get('competitor').trim();
      if (f.get('note').trim()) data.note = f.get('note').trim();
      return { type: 'DealLost', data };
    });
    wireForm('quote-form', stream, version, (f) => {
      const data = { quote_id: f.get('quote_id').trim(), amount: Number(f.get('amount')) };
      if (f.get('discount_pct') !== '') data.discount_pct = Number(f.get('discount_pct'));
      return { type: 'QuoteIssued', data };
    });
    wireForm('payment-form', stream, version, (f) => {
      const data = { amount: Number(f.get('amount')) };
      if (f.get('installment_id')) data.installment_id = f.get('installment_id');
      return { type: 'PaymentReceived', data };
    });
    showFormMessage();
    focusRequested(owed);
  };
  return { html, after };
}
