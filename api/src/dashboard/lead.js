// --- page: one lead's events (linked from Today's leads to work) --------------------------
labels({ 'lead.title': 'Lead' }, { 'lead.title': '线索' });

async function leadPage(id) {
  const s = await api(`/v1/streams/lead-${encodeURIComponent(id)}`);
  const events = s.events || [];
  if (!events.length) throw new HttpError(404, 'no such lead');
  const first = events[0].data || {};
  const items = events.slice().reverse().map((e) => {
    const d = e.data || {};
    const what = [d.channel, d.rep, d.fit_score != null ? `${t('fit_score')} ${d.fit_score}` : '', d.intent_score != null ? `${t('intent_score')} ${d.intent_score}` : '', d.reason]
      .filter(Boolean).join(' · ');
    const link = d.customer_id ? ` · ${customerLink(d.customer_id)}` : '';
    const deal = d.deal_id ? ` · ${dealLink(d.deal_id)}` : '';
    return `<li><time>${esc(date(e.occurred_at))}</time> <b>${esc(e.type)}</b> ${esc(what)}${link}${deal} <span class="muted">— ${esc(e.actor)}</span></li>`;
  }).join('');
  return `<h1>${esc(t('lead.title'))}: ${esc(first.name || id)}</h1>
  <p class="muted">${esc(first.company || '')} · ${esc(t('channel'))}: ${esc(first.channel || '')}</p>
  <h2>${esc(t('timeline'))}</h2><ol class="steps">${items}</ol>`;
}

page(/^\/leads\/(.+)$/, leadPage);
