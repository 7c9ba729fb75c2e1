// dealtrail dashboard: live pages. A page left open (the overview on a wall screen, a deal's
// replay during a call) is drawn again, without a reload, when the log moves: it follows
// `GET /v1/subscribe` read with `fetch` (an `EventSource` cannot send the bearer header),
// from the log's head, and reacts to the events that concern it (on a deal's page, that deal's
// stream). Tokens that may not subscribe (a rep, a manager: 403) watch `GET /healthz`'s
// `last_position` once a second instead. The page is re-read after a short pause (the read
// model follows the log a moment later) and replaced only if what it shows changed, never
// while a field of a form on it is being edited.

let liveStarted = false;
let liveTimers = [];
let editing = false;
/** The HTML last drawn in `main` (as the page rendered it, before the browser parsed it). */
let drawnHtml = '';

document.addEventListener('input', (ev) => { if (ev.target.closest && ev.target.closest('main form')) editing = true; });

/** Draws the current page again in place (no "Loading…"), if its content changed. */
async function redrawQuietly() {
  if (editing || !token()) return;
  const path = decodeURIComponent(location.pathname);
  let m;
  const hit = PAGES.find((p) => (m = path.match(p.pattern)));
  if (!hit) return;
  try {
    const out = await hit.render(...m.slice(1));
    const html = typeof out === 'string' ? out : out.html;
    if (editing || html === drawnHtml) return;
    const scroll = window.scrollY;
    main().innerHTML = html;
    drawnHtml = html;
    if (out.after) out.after();
    window.scrollTo(0, scroll);
    main().dataset.redrawn = String(Number(main().dataset.redrawn || 0) + 1);
  } catch (_) { /* keep what is shown; the next change tries again */ }
}

/** The log moved in a way that concerns this page: re-read it twice, as the model catches up. */
function changed() {
  liveTimers.forEach(clearTimeout);
  liveTimers = [setTimeout(redrawQuietly, 300), setTimeout(redrawQuietly, 1200)];
}

/** Whether an event on `stream` concerns the page shown. */
function concerns(stream) {
  const deal = decodeURIComponent(location.pathname).match(/^\/deals\/(.+)$/);
  return !deal || stream === `deal-${deal[1]}`;
}

async function head() {
  const res = await fetch('/healthz');
  return (await res.json()).last_position || 0;
}

async function pollHealth(from) {
  let last = from;
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    try {
      const now = await head();
      if (now !== last) { last = now; changed(); }
    } catch (_) { /* the server restarts: keep polling */ }
  }
}

async function subscribe(from) {
  const res = await fetch(`/v1/subscribe?from_position=${from + 1}`, { headers: { Authorization: `Bearer ${token()}`, Accept: 'text/event-stream' } });
  if (res.status === 403 || res.status === 401) return pollHealth(from);
  if (!res.ok || !res.body) throw new Error(`subscribe: ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let last = from;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = frame.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (!data) continue;
      try {
        const ev = JSON.parse(data);
        last = Math.max(last, ev.position || 0);
        if (concerns(ev.stream)) changed();
      } catch (_) { /* not an event */ }
    }
  }
  // The stream ended (a restart): follow again from what was seen.
  setTimeout(() => subscribe(last).catch(() => pollHealth(last)), 1000);
  return undefined;
}

/** Called by the router after each page is drawn: starts following the log once. */
function followLog(html) {
  editing = false;
  drawnHtml = html;
  if (liveStarted || !token()) return;
  liveStarted = true;
  head().then((from) => subscribe(from).catch(() => pollHealth(from))).catch(() => { liveStarted = false; });
}
