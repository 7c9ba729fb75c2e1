// dealtrail dashboard: the router and start-up, concatenated last (see dashboard/mod.rs).

// --- router ------------------------------------------------------------------------------
function applyLabels() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll('[data-i18n-placeholder]').forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.querySelectorAll('[data-i18n-label]').forEach((el) => { el.setAttribute('aria-label', t(el.dataset.i18nLabel)); });
  document.getElementById('lang').textContent = lang === 'zh' ? 'English' : '中文';
}

async function render() {
  applyLabels();
  if (!token()) return showLogin();
  document.getElementById('login').hidden = true;
  main().hidden = false;
  main().innerHTML = `<p class="muted">${esc(t('loading'))}</p>`;
  const path = decodeURIComponent(location.pathname);
  let m;
  try {
    let out;
    const hit = PAGES.find((p) => (m = path.match(p.pattern)));
    if (!hit) throw new HttpError(404, 'no such page');
    await loadStageNames();
    out = await hit.render(...m.slice(1));
    main().innerHTML = typeof out === 'string' ? out : out.html;
    if (out.after) out.after();
    followLog(typeof out === 'string' ? out : out.html);
  } catch (e) {
    if (e.status === 401) { localStorage.removeItem('dealtrail.token'); return showLogin(t('login.bad')); }
    const msg = e.status === 404 || e.status === 403 ? t('notfound') : `${t('error')}: ${e.message}`;
    main().innerHTML = `<p class="error" role="alert" data-status="${esc(e.status || '')}">${esc(msg)}</p>`;
  }
}

document.getElementById('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  localStorage.setItem('dealtrail.token', document.getElementById('token').value.trim());
  signedIn();
});
document.getElementById('logout').addEventListener('click', () => { localStorage.removeItem('dealtrail.token'); render(); });
document.getElementById('lang').addEventListener('click', () => {
  lang = lang === 'zh' ? 'en' : 'zh';
  localStorage.setItem('dealtrail.lang', lang);
  render();
});
if (takeHashToken()) signedIn(); else render();
