// --- page: one lead's events (linked from Today's leads to work), and what a rep does next:
// convert it into a new customer of his, or disqualify it.
labels({
  'lead.title': 'Lead', 'lead.convert': 'Convert into a customer', 'lead.customer_id': 'New customer id',
  'lead.customer_name': 'Customer name', 'lead.disqualify': 'Disqualify', 'lead.converted': 'Converted: {link}',
}, {
  'lead.title': '线索', 'lead.convert': '转化为客户', 'lead.customer_id': '新客户编号',
  'lead.customer_name': '客户名称', 'lead.disqualify': '标记无效', 'lead.converted': '已转化：{link}',
});

/** The two forms of an open lead qualified to `rep` (the lead stream is at `version`). */
function leadForms(id, first, rep, version) {
  const html = `<section id="record"><h2>${esc(t('forms.title'))}</h2><div class="forms">
    <form id="convert-form" class="record"><h3>${esc(t('lead.convert'))}</h3>
      <label>${esc(t('lead.customer_name'))} <input name="name" required value="${esc(first.company || first.name || '')}"></label>
      <label>${esc(t('lead.customer_id'))} <input name="customer_id" required size="12" value="${esc(`C-${id}`)}"></label>
      <button type="submit">${esc(t('save'))}</button><p class="form-msg" role="status"></p></form>
    <form id="disqualify-form" class="record"><h3>${esc(t('lead.disqualify'))}</h3>
      <label>${esc(t('reason'))} <input name="reason" required size="16"></label>
      <button type="submit">${esc(t('save'))}</button><p class="form-msg" role="status"></p></form></div></section>`;
  const after = () => {
    wireForm('disqualify-form', `lead-${id}`, version, (f) => ({ type: 'LeadDisqualified', data: { reason: f.get('reason').trim() } }));
    // Converting registers the customer (owned by the rep, from the lead's channel), then
    // records the conversion; a refused registration records nothing.
    const form = document.getElementById('convert-form');
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      form.querySelector('button').disabled = true;
      const f = new FormData(form);
      const cid = f.get('customer_id').trim();
      let failed = await appendEvent(`customer-${cid}`, 'no_stream', { type: 'CustomerRegistered', data: { name: f.get('name').trim(), owner: rep, source: first.channel } });
      if (!failed) failed = await appendEvent(`lead-${id}`, version, { type: 'LeadConverted', data: { customer_id: cid } });
      const text = failed || fill(t('lead.converted'), { link: cid });
      sessionStorage.setItem('dealtrail.formMsg', JSON.stringify({ id: 'convert-form', text, ok: !failed }));
      await render();
    });
    showFormMessage();
  };
  return { html, after };
}

async function leadPage(id) {
  const s = await api(`/v1/streams/lead-${encodeURIComponent(id)}`);
  const events = s.events || [];
  if (!events.length) throw new HttpError(404, 'no such lead');
  const first = events[0].data || {};
  const items = events.slice().reverse().map((e) => {
    const d = e.data || {};
    const what = [d.channel, d.rep, d.fit_score != null ? `${t('fit_score')} ${d.fit_score}` : '', d.intent_score != null ? `${t('intent_score')} ${d.intent_score}` : '', d.reason ? reasonName(d.reason) : '']
      .filter(Boolean).join(' · ');
    const link = d.customer_id ? ` · ${customerLink(d.customer_id)}` : '';
    const deal = d.deal_id ? ` · ${dealLink(d.deal_id)}` : '';
    return `<li><time>${esc(date(e.occurred_at))}</time> <b>${esc(typeName(e.type))}</b> ${esc(what)}${link}${deal} <span class="muted">— ${esc(e.actor)}</span></li>`;
  }).join('');
  const closed = events.some((e) => e.type === 'LeadConverted' || e.type === 'LeadDisqualified');
  const qualified = events.filter((e) => e.type === 'LeadQualified').pop();
  // A closed lead keeps a place for the words of what was just done to it.
  const forms = !closed && qualified ? leadForms(id, first, qualified.data.rep, s.version)
    : { html: '<section id="record"><p class="form-msg" role="status"></p></section>', after: showFormMessage };
  const html = `<h1>${esc(t('lead.title'))}: ${esc(first.name || id)}</h1>
  <p class="muted">${esc(first.company || '')} · ${esc(t('channel'))}: ${esc(first.channel || '')}</p>
  ${forms.html}<h2>${esc(t('timeline'))}</h2><ol class="steps">${items}</ol>`;
  return { html, after: forms.after };
}

page(/^\/leads\/(.+)$/, leadPage);
