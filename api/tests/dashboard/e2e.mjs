// End-to-end test of the dashboard in Debian's headless Chromium (no downloaded browser).
// Env: DEALTRAIL_URL (e.g. http://127.0.0.1:8080; the server runs `serve --demo
// --pool-release-after-days 60`), DEALTRAIL_TOKEN (an admin token),
// SCREENSHOT_DIR (where PNGs go), CHROMIUM (default /usr/bin/chromium).
// Exits non-zero on the first failed check, saying which, and on any Content-Security-Policy
// violation (a `securitypolicyviolation` event or a CSP error in the console) on any page.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const base = process.env.DEALTRAIL_URL;
const token = process.env.DEALTRAIL_TOKEN;
const shots = process.env.SCREENSHOT_DIR || 'screenshots';
if (!base || !token) throw new Error('set DEALTRAIL_URL and DEALTRAIL_TOKEN');
mkdirSync(shots, { recursive: true });

let checks = 0;
function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  checks += 1;
  console.log(`ok ${checks} - ${what}`);
}

// Every CSP violation any page reports, as text.
const violations = [];
// Watches `context`'s pages for CSP violations: the event, caught by a script the browser runs
// before the page's own (DevTools scripts are not subject to the page's CSP), and the console.
async function watchCsp(context) {
  await context.exposeBinding('__cspViolation', (_source, text) => violations.push(text));
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolation(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} at ${e.documentURI} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  const onPage = (p) => p.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) violations.push(`console: ${m.text()}`);
  });
  context.pages().forEach(onPage);
  context.on('page', onPage);
}
function checkNoViolations(where) {
  check(violations.length === 0, `no Content-Security-Policy violation ${where}${violations.length ? ': ' + violations.join(' | ') : ''}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, locale: 'en-US' });
  await watchCsp(context);
  const page = await context.newPage();
  const api = (path) => page.evaluate(async ([p, t]) => (await fetch(p, { headers: { Authorization: `Bearer ${t}` } })).json(), [path, token]);

  // Log in with the token form.
  const started = Date.now();
  const first = await page.goto(base + '/');
  const csp = first.headers()['content-security-policy'] || '';
  check(csp.includes("script-src 'self'") && csp.includes("frame-ancestors 'none'") && !csp.includes('unsafe-'), `the page comes with its CSP (${csp})`);
  check(first.headers()['x-content-type-options'] === 'nosniff', 'and nosniff');
  await page.waitForSelector('#login-form', { state: 'visible' });
  check(true, 'the login form is shown without a token');
  await page.fill('#token', 'wrong-token');
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
  check(true, 'a wrong token is refused on the form');
  await page.fill('#token', token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('.card[data-key=open_count]');
  console.log(`overview rendered ${Date.now() - started} ms after the first request (includes the wrong-token round)`);

  // The overview's figures equal the API's, formatted for the locale.
  const p = await api('/v1/reports/pipeline');
  const shown = async (key) => (await page.textContent(`.card[data-key=${key}] .v`)).trim();
  // Amounts in the report's own currency (`currency`), never a hard-coded one.
  const fmt = (x, money) => page.evaluate(([v, m]) => (m ? new Intl.NumberFormat('en-US', { style: 'currency', currency: m, maximumFractionDigits: 0 }) : new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })).format(v), [x, money && p.currency]);
  check((await shown('open_count')) === (await fmt(p.open_count, false)), `open deals = API open_count (${p.open_count})`);
  check((await shown('open_amount')) === (await fmt(p.open_amount, true)), `open amount = API open_amount (${p.open_amount})`);
  check((await shown('forecast')) === (await fmt(p.forecast, true)), `forecast = API forecast (${p.forecast})`);
  check((await shown('won_this_month')) === (await fmt(p.won_this_month, true)), `won this month = API (${p.won_this_month})`);
  const leaders = await page.$$eval('#leaderboard tbody tr', (rows) => rows.length);
  check(leaders === p.leaderboard.length, `leaderboard has ${p.leaderboard.length} reps`);
  await page.screenshot({ path: `${shots}/overview.png`, fullPage: false });

  // Open a lost deal and step through its replay.
  const lost = await api('/v1/events?types=DealLost&limit=1');
  const dealId = lost.events[0].stream.slice('deal-'.length);
  const replay = await api(`/v1/deals/${dealId}/replay`);
  await page.goto(`${base}/deals/${dealId}`);
  await page.waitForSelector('#scrub');
  const status = () => page.textContent('[data-field=status]');
  check((await status()) === 'lost', 'the replay opens on the last step: lost');
  await page.$eval('#scrub', (el) => { el.value = '1'; el.dispatchEvent(new Event('input')); });
  check((await status()) === 'open', 'at step 1 the deal is open');
  check((await page.textContent('[data-field=stage]')) === replay.steps[0].state.stage, 'step 1 shows the opening stage');
  const n = replay.steps.length;
  for (let i = 2; i <= n; i += 1) {
    await page.$eval('#scrub', (el, v) => { el.value = String(v); el.dispatchEvent(new Event('input')); }, i);
    const want = replay.steps[i - 1].state;
    check((await page.textContent('[data-field=stage]')) === want.stage && (await page.textContent('#step-no')) === String(i), `step ${i}: stage ${want.stage}`);
  }
  await page.screenshot({ path: `${shots}/deal-replay.png`, fullPage: false });

  // Switch the language: labels change, the choice is remembered.
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('nav a').textContent === '总览');
  check(true, 'labels switch to Chinese');
  await page.goto(base + '/');
  await page.waitForSelector('.card[data-key=open_count]');
  check((await page.textContent('.card[data-key=open_count] .k')) === '进行中商机', 'the language is remembered across pages');
  await page.screenshot({ path: `${shots}/overview-zh.png`, fullPage: false });

  // Phone width.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await page.waitForSelector('.card[data-key=open_count]');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  check(!overflow, 'no horizontal page overflow at 390 px');
  await page.screenshot({ path: `${shots}/overview-phone.png`, fullPage: false });
  checkNoViolations('on the login form, overview, replay, in Chinese and at phone width');

  // The watch works: an inline script is refused, and both the event and the console
  // report it (they arrive in either order).
  const ran = await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__inlineRan = true;';
    document.body.appendChild(s);
    return window.__inlineRan === true;
  });
  const seen = () => [violations.some((v) => v.startsWith('console:')), violations.some((v) => !v.startsWith('console:'))];
  for (let i = 0; i < 100 && !seen().every(Boolean); i += 1) await page.waitForTimeout(20);
  check(!ran && seen().every(Boolean), 'an inline script is blocked, and both the event and the console report it');
  violations.length = 0;

  // A wall screen: #token= in the URL logs in and is removed from the address bar.
  const wall = await browser.newPage();
  await watchCsp(wall.context());
  await wall.goto(`${base}/#token=${encodeURIComponent(token)}`);
  await wall.waitForSelector('.card[data-key=open_count]');
  check(!wall.url().includes('token='), 'the token is removed from the address bar');

  // The other pages under the same policy.
  const pool = await api('/v1/pool');
  const pooled = (pool.customers || pool.in_pool || [])[0];
  const paths = ['/funnel?group_by=rep', '/pool', `/reps/${p.leaderboard[0].rep}`];
  if (pooled) paths.push(`/customers/${pooled.customer_id}`);
  for (const path of paths) {
    await wall.goto(base + path);
    await wall.waitForSelector('main h1');
  }
  checkNoViolations('on any page');

  // Tokens for a rep and a manager, issued by the admin (POST /v1/tokens).
  const issue = (role, subject) => page.evaluate(async ([t, r, s]) => {
    const res = await fetch('/v1/tokens', { method: 'POST', headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ role: r, subject: s }) });
    return (await res.json()).token;
  }, [token, role, subject]);
  const repToken = await issue('rep', 'nezha');
  const managerToken = await issue('manager', 'east');
  check(Boolean(repToken && managerToken), 'the admin issues a rep and a manager token');

  // A rep signs in and lands on Today: the four lists of the follow-up list, as the API says.
  const repContext = await browser.newContext({ viewport: { width: 1280, height: 1000 }, locale: 'en-US' });
  await watchCsp(repContext);
  const repPage = await repContext.newPage();
  await repPage.goto(base + '/');
  await repPage.waitForSelector('#login-form', { state: 'visible' });
  await repPage.fill('#token', repToken);
  await repPage.click('#login-form button[type=submit]');
  await repPage.waitForSelector('#overdue');
  check(new URL(repPage.url()).pathname === '/today', `a rep lands on /today after signing in (${repPage.url()})`);
  const follow = await repPage.evaluate(async (t) => (await fetch('/v1/reports/follow-up', { headers: { Authorization: `Bearer ${t}` } })).json(), repToken);
  const lists = [['overdue', 'overdue_payments'], ['stale', 'stale_deals'], ['pool-soon', 'pool_release_soon'], ['leads', 'leads_to_work']];
  for (const [id, key] of lists) {
    const rows = await repPage.$$eval(`#${id} tbody tr`, (r) => r.length);
    check(rows === follow[key].length, `Today: ${key} lists ${follow[key].length} items`);
  }
  check(follow.pool_release_after_days != null ? follow.pool_release_soon.length > 0 : true, 'with the pool policy on, someone is about to go back to the pool');
  const firstDeal = await repPage.getAttribute('#overdue tbody tr a', 'href');
  check(firstDeal === `/deals/${follow.overdue_payments[0].deal_id}`, 'an overdue payment links to its deal');
  const firstLead = await repPage.getAttribute('#leads tbody tr a', 'href');
  check(firstLead === `/leads/${follow.leads_to_work[0].lead_id}`, 'a lead to work links to the lead');
  await repPage.screenshot({ path: `${shots}/today.png`, fullPage: false });
  await repPage.click('#leads tbody tr a');
  await repPage.waitForSelector('ol.steps li');
  check((await repPage.textContent('main h1')).includes(follow.leads_to_work[0].name), 'the lead page opens');
  await repPage.click('#lang');
  await repPage.goto(base + '/today');
  await repPage.waitForSelector('#overdue');
  check((await repPage.textContent('#overdue h2')).startsWith('逾期回款'), 'Today in Chinese');
  await repPage.screenshot({ path: `${shots}/today-zh.png`, fullPage: false });

  // A manager opens Service: the team's figures, then grouped by rep.
  const mgrContext = await browser.newContext({ viewport: { width: 1280, height: 1000 }, locale: 'en-US' });
  await watchCsp(mgrContext);
  const mgr = await mgrContext.newPage();
  await mgr.goto(`${base}/#token=${encodeURIComponent(managerToken)}`);
  await mgr.waitForSelector('.card[data-key=open_count]');
  check(new URL(mgr.url()).pathname === '/', 'a manager stays on the overview after signing in');
  await mgr.goto(base + '/service');
  await mgr.waitForSelector('.service-group svg.nps');
  const svc = await mgr.evaluate(async (t) => (await fetch('/v1/reports/service?months=12&group_by=none', { headers: { Authorization: `Bearer ${t}` } })).json(), managerToken);
  const last = svc.groups[0].series[svc.groups[0].series.length - 1];
  const npsShown = (await mgr.textContent('.card[data-key=nps_score] .v')).trim();
  const npsWant = await mgr.evaluate((v) => (v == null ? '—' : new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 }).format(v)), last.nps.score);
  check(npsShown === npsWant, `Service: the last month's NPS = API (${last.nps.score})`);
  const bars = await mgr.$$eval('svg.nps g[data-month]', (g) => g.length);
  check(bars === 12, 'Service: twelve months of NPS bands');
  const rows = await mgr.$$eval('.service-group tbody tr', (r) => r.length);
  check(rows === 12, 'Service: a table row a month');
  await mgr.screenshot({ path: `${shots}/service.png`, fullPage: false });
  await mgr.goto(base + '/service?group_by=rep');
  await mgr.waitForSelector('.service-group[data-key]');
  const keys = await mgr.$$eval('.service-group', (g) => g.map((x) => x.dataset.key));
  const svcRep = await mgr.evaluate(async (t) => (await fetch('/v1/reports/service?months=12&group_by=rep', { headers: { Authorization: `Bearer ${t}` } })).json(), managerToken);
  check(JSON.stringify(keys) === JSON.stringify(svcRep.groups.map((g) => g.key)) && !keys.includes('pool'), `Service by rep: the team's reps (${keys.join(', ')})`);
  await mgr.goto(base + '/today');
  await mgr.waitForSelector('form.filters input[name=rep]');
  check(true, 'a manager is asked whose follow-up list to show');
  await mgr.goto(base + '/today?rep=wukong');
  await mgr.waitForSelector('#overdue');
  check(true, "a manager opens a team rep's follow-up list");
  checkNoViolations('on Today, a lead and Service');
} finally {
  await browser.close();
}
console.log(`${checks} passed, 0 failed`);
