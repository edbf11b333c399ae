// hallmon console: plain JS over the JSON API, no build step, no outside assets.
// The credential (a sign-in session's token, or an API token) lives in sessionStorage
// and travels in the Authorization header only: never in a URL, never in a cookie, so
// another site cannot make the browser send it (docs/accounts.md). Every string comes from /console/catalogue.json.
'use strict';

const S = {
  token: sessionStorage.getItem('hallmon.token'),
  lang: localStorage.getItem('hallmon.lang') === 'en' ? 'en' : 'zh',
  cat: null, me: null, view: { name: '' }, open: new Map(), loading: false, buffer: [],
  stream: null, dirty: new Set(), fmt: null, streamedOnce: false,
};
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

class ApiError extends Error {
  constructor(status, code, detail) { super(detail || code); this.status = status; this.code = code; this.detail = detail; }
}
class SignedOut extends Error {}

// ── words ──────────────────────────────────────────────────────────────────────
function t(key, vars) {
  const table = (S.cat && S.cat[S.lang]) || {};
  let s = table[key];
  if (s === undefined) return key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (_, k) => (vars[k] === undefined ? '' : String(vars[k])));
  return s;
}
const has = (key) => !!(S.cat && S.cat[S.lang] && S.cat[S.lang][key] !== undefined);
function esc(v) {
  return String(v === null || v === undefined ? '' : v).replace(/[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
function faultWords(f) { return has('fault.' + f) ? `${t('fault.' + f)} (${f})` : f; }
function faultList(doc) {
  const faults = doc.faults && doc.faults.length ? doc.faults : [];
  if (!faults.length) return has('category.' + doc.category) ? t('category.' + doc.category) : doc.category;
  return faults.map(faultWords).join(S.lang === 'zh' ? '；' : '; ');
}
function orgIndex() {
  if (S.orgIdx) return S.orgIdx;
  const sites = {}, units = {};
  for (const u of (S.me && S.me.organisation.units) || []) {
    units[u.id] = u.name;
    for (const s of u.sites) sites[s.id] = s.name;
  }
  return (S.orgIdx = { sites, units });
}
const siteName = (id) => orgIndex().sites[id] || id;
const unitName = (id) => orgIndex().units[id] || id;
const joinNames = (ids, fn) => (ids || []).map(fn).join(S.lang === 'zh' ? '、' : ', ');
function levelLabel(doc) { return S.lang === 'zh' && doc.level_name ? doc.level_name : t('level.n', { n: doc.level }); }
const clockTitle = (c) => (S.lang === 'en' && c.title_en) || c.title || c.id;
function fmt(iso) {
  if (!iso) return '-';
  if (!S.fmt || S.fmt.lang !== S.lang) {
    S.fmt = { lang: S.lang, f: new Intl.DateTimeFormat(S.lang === 'zh' ? 'zh-CN' : 'en-GB', {
      timeZone: (S.me && S.me.timezone) || undefined, year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }) };
  }
  return S.fmt.f.format(new Date(iso));
}
function dur(ms) {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const hms = `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
  return d ? t('dur.days', { d, hms }) : hms;
}
// a wall time typed in the service's time zone ("2026-12-01T09:30") as an instant
function zoned(local) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local);
  if (!m) return null;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  const offset = (ts) => {
    const p = {};
    for (const x of new Intl.DateTimeFormat('en-US', { timeZone: S.me.timezone, hourCycle: 'h23', year: 'numeric',
      month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(new Date(ts))) p[x.type] = x.value;
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - ts;
  };
  let ts = wall - offset(wall);
  ts = wall - offset(ts);
  return ts;
}

// ── talking to hallmon ─────────────────────────────────────────────────────────
async function api(path, opts = {}) {
  const headers = { Authorization: 'Bearer ' + S.token, Accept: opts.accept || 'application/json' };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, { method: opts.method || 'GET', headers, cache: 'no-store',
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined });
  } catch (err) {
    throw new ApiError(0, 'network', t('err.network'));
  }
  if (r.status === 401) {
    const why = await r.json().catch(() => ({}));
    signOut(t(why.error === 'session_expired' ? 'signin.expired' : 'signin.bad'), false);
    throw new SignedOut();
  }
  const type = r.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await r.json().catch(() => ({})) : await r.text();
  if (!r.ok) throw new ApiError(r.status, data && data.error, (data && data.detail) || String(r.status));
  return data;
}
function problem(err) {
  if (err instanceof SignedOut) return '';
  if (!(err instanceof ApiError)) return t('err.generic', { detail: err && err.message });
  if (err.status === 0) return t('err.network');
  if (err.status === 403) return t('err.scope');
  if (err.status === 503 || err.status === 429) return t('err.unavailable');
  return t('act.failed', { detail: err.detail });
}
function say(text, kind = '') {
  const box = $('#message');
  box.textContent = text;
  box.className = 'message ' + kind;
  box.hidden = !text;
}

// ── live updates: server-sent events read with fetch, so the token stays in a header ──
async function stream() {
  if (S.stream) S.stream.abort();
  const ctl = (S.stream = new AbortController());
  while (S.token && !ctl.signal.aborted) {
    try {
      const r = await fetch('/api/v1/events', { headers: { Authorization: 'Bearer ' + S.token, Accept: 'text/event-stream' },
        signal: ctl.signal, cache: 'no-store' });
      if (r.status === 401) {
        const why = await r.json().catch(() => ({}));
        signOut(t(why.error === 'session_expired' ? 'signin.expired' : 'signin.bad'), false);
        return;
      }
      if (!r.ok || !r.body) throw new Error(String(r.status));
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let type = 'message', data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) type = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data) onEvent(type, JSON.parse(data));
        }
      }
    } catch (err) {
      if (ctl.signal.aborted) return;
    }
    live(false);
    await new Promise((ok) => setTimeout(ok, 1500));
  }
}
function live(on) {
  const el = $('#live');
  el.textContent = on ? t('live.on') : t('live.off');
  el.className = 'live' + (on ? '' : ' off');
}
function onEvent(type, data) {
  if (type === 'ready' || type === 'resync') {
    live(true);
    if (S.onReady) { S.onReady(); S.onReady = null; }
    if (S.streamedOnce || type === 'resync') refreshView();
    S.streamedOnce = true;
    return;
  }
  if (type === 'page_sent') {
    $('#live').textContent = t('page.sent', { name: data.person_name || data.person || data.channel, incident: data.incident });
    return;
  }
  const doc = data.incident;
  if (!doc) return;
  if (S.view.name === 'list') {
    if (S.loading) S.buffer.push(doc); else upsertRow(doc);
  } else if (S.view.name === 'incident' && S.view.id === doc.id) {
    refreshIncident();
  }
}

// ── sign-in ────────────────────────────────────────────────────────────────────
function takeFragmentToken() {
  // `hallmon demo` prints /console/#token=…: the fragment never reaches a server or a log
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (m) {
    S.token = decodeURIComponent(m[1]);
    sessionStorage.setItem('hallmon.token', S.token);
    history.replaceState(null, '', location.pathname + '#/');
  }
}
function signOut(msg, tell = true) {
  // a session ends on the server too (best effort: the tab forgets it either way)
  if (tell && S.token && S.me && S.me.kind === 'session') {
    fetch('/api/v1/session', { method: 'DELETE', headers: { Authorization: 'Bearer ' + S.token } }).catch(() => {});
  }
  sessionStorage.removeItem('hallmon.token');
  S.token = null; S.me = null; S.orgIdx = null;
  if (S.stream) S.stream.abort();
  $('#nav').hidden = true; $('#signout').hidden = true; $('#signout-all').hidden = true;
  $('#who').textContent = ''; $('#live').textContent = '';
  showSignIn(msg);
}
const SIGNIN_WORDS = { bad_credentials: 'signin.wrong', slow_down: 'signin.slow', locked: 'signin.locked',
  directory_unavailable: 'signin.directory', no_role: 'signin.norole', account_disabled: 'signin.disabled' };
async function signInWithPassword(username, password) {
  let r;
  try {
    r = await fetch('/api/v1/session', { method: 'POST', cache: 'no-store',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username, password }) });
  } catch (err) { showSignIn(t('err.network')); return; }
  const data = await r.json().catch(() => ({}));
  if (r.status !== 201) {
    const seconds = r.headers.get('Retry-After') || '';
    showSignIn(SIGNIN_WORDS[data.error] ? t(SIGNIN_WORDS[data.error], { seconds }) : t('err.generic', { detail: data.detail || r.status }), username);
    return;
  }
  S.token = data.token;
  sessionStorage.setItem('hallmon.token', data.token);
  start();
}
function showSignIn(msg, username = '') {
  S.view = { name: 'signin' };
  setView(`<h1>${t('signin.title')}</h1>
    <form id="signin-pw" class="card">
      <p>${t('signin.help')}</p>
      <p role="alert" class="${msg ? 'broken' : ''}" id="signin-msg" data-testid="signin-message">${esc(msg || '')}</p>
      <label for="username">${t('signin.username')}</label><br>
      <input id="username" name="username" type="text" autocomplete="username" spellcheck="false" required data-testid="username-input" value="${esc(username)}"><br>
      <label for="password">${t('signin.password')}</label><br>
      <input id="password" name="password" type="password" autocomplete="current-password" required data-testid="password-input">
      <button class="primary" type="submit" data-testid="signin-submit">${t('signin.submit')}</button>
    </form>
    <details class="card" id="signin-token-box"${username ? '' : ' open'}><summary>${t('signin.or_token')}</summary>
    <form id="signin">
      <label for="token">${t('signin.token')}</label><br>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required data-testid="token-input">
      <button type="submit">${t('signin.submit')}</button>
    </form></details>`);
  $('#signin-pw').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = $('#username').value.trim();
    const password = $('#password').value;
    if (!name || !password) return;
    $('#password').value = '';
    signInWithPassword(name, password);
  });
  $('#signin').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = $('#token').value.trim();
    if (!value) return;
    S.token = value;
    sessionStorage.setItem('hallmon.token', value);
    start();
  });
  (username ? $('#password') : $('#username')).focus();
}
async function start() {
  try {
    S.me = await api('/api/v1/whoami');
  } catch (err) {
    if (!(err instanceof SignedOut)) { const m = problem(err); sessionStorage.removeItem('hallmon.token'); S.token = null; showSignIn(m); }
    return;
  }
  S.orgIdx = null; S.fmt = null;
  $('#nav').hidden = false; $('#signout').hidden = false;
  $('#signout-all').hidden = S.me.kind !== 'session';
  $('#nav-audit').hidden = !S.me.scopes.includes('accounts:admin');
  $('#who').textContent = t('signin.as', { name: S.me.name });
  // the stream first, then the view: nothing that changes between the two is missed
  const ready = new Promise((ok) => { S.onReady = ok; });
  stream();
  await Promise.race([ready, new Promise((ok) => setTimeout(ok, 2000))]);
  route();
}

// ── views ──────────────────────────────────────────────────────────────────────
function setView(html) {
  $('#view').innerHTML = html;
}
function route() {
  if (!S.token || !S.me) return;
  say('');
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  S.filter = { site: new URLSearchParams(query || '').get('site') || '' };
  for (const a of $$('#nav a')) {
    const here = ('#/' + (parts[0] === 'incident' ? '' : parts[0] || '')) === a.getAttribute('href');
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  S.dirty = new Set();
  const views = { closed: viewClosed, oncall: viewOncall, maintenance: viewMaintenance, monthly: viewMonthly,
    audit: viewAudit };
  if (parts[0] === 'incident' && parts[1]) return parts[2] === 'draft' ? viewDraft(parts[1], parts[3] || 'phone') : viewIncident(parts[1]);
  return (views[parts[0]] || viewList)();
}
function refreshView() {
  if (S.view.name === 'list') viewList(true);
  else if (S.view.name === 'incident') refreshIncident();
}

// open incidents by level
async function allPages(query, cap = 20) {
  const out = [];
  let offset = 0;
  for (let i = 0; i < cap && offset !== null; i++) {
    const page = await api(`/api/v1/incidents?${query}&limit=1000&offset=${offset}`);
    out.push(...page.incidents);
    offset = page.next_offset;
  }
  return out;
}
async function viewList(keep) {
  S.view = { name: 'list' };
  if (keep !== true || !$('#levels')) {
    setView(`<h1>${t('list.title')}</h1><div class="card" id="oncallbox" data-testid="oncall-now"></div>
      <div id="levels"><p>${t('loading')}</p></div>`);
  }
  S.loading = true; S.buffer = [];
  let docs;
  try {
    docs = (await api('/api/v1/incidents-open')).incidents;
  } catch (err) {
    S.loading = false;
    if (!(err instanceof SignedOut)) $('#levels').innerHTML = `<p class="broken">${esc(problem(err))}</p>`;
    return;
  }
  if (S.view.name !== 'list') return;
  S.open = new Map(docs.map((d) => [d.id, d]));
  renderLevels();
  S.loading = false;
  for (const doc of S.buffer.splice(0)) upsertRow(doc);
  oncallBox();
}
function renderLevels() {
  const by = { 1: [], 2: [], 3: [] };
  for (const d of S.open.values()) if (shown(d)) (by[d.level] || by[3]).push(d);
  const only = S.filter && S.filter.site ? `<p class="card">${t('list.only', { site: siteName(S.filter.site) })}
    <a href="#/">${t('list.all')}</a></p>` : '';
  const now = Date.now();
  // the whole list as one string and one innerHTML: the countdowns are in it already
  const html = [1, 2, 3].map((n) => {
    const rows = by[n].sort((a, b) => (a.detected_at < b.detected_at ? 1 : -1));
    return `<section aria-labelledby="lvl${n}"><h2 id="lvl${n}">${t('level.' + n)}
      <span class="muted" id="count-${n}">${t('list.count', { n: rows.length })}</span></h2>
      <ul class="rows" id="rows-${n}">${rows.map((d) => rowHtml(d, now)).join('')}</ul></section>`;
  }).join('');
  $('#levels').innerHTML = only + html + (S.open.size ? '' : `<p class="muted" id="empty">${t('list.empty')}</p>`);
}
const shown = (d) => !(S.filter && S.filter.site) || (d.sites || []).includes(S.filter.site);
function marks(d) {
  return (d.drill ? ` <span class="tag">${t('mark.drill')}</span>` : '') +
    (d.maintenance ? ` <span class="tag">${t('mark.maintenance')}</span>` : '') +
    (d.recovered ? ` <span class="tag">${t('mark.recovered')}</span>` : '');
}
// a clock's countdown: [text, overdue]; rendered with the row, then kept by tick()
// the clocks still owed: a filed (met) or withdrawn one counts down no more
const owed = (c) => c.status === 'pending' || c.status === 'overdue';
function countdown(status, due, now) {
  if (!owed({ status })) return [t('clockstatus.' + status), false];
  const left = due - now;
  return left >= 0 ? [t('clock.left', { t: dur(left) }), false] : [t('clock.late', { t: dur(-left) }), true];
}
function clockChip(c, now) {
  const [text, late] = countdown(c.status, Date.parse(c.due_at), now);
  return `<li class="clock${late ? ' late' : ''}" data-testid="clock" data-clock-id="${esc(c.id)}" data-status="${esc(c.status)}" data-due="${esc(c.due_at)}">
    ${esc(clockTitle(c))} <span class="count">${esc(text)}</span></li>`;
}
// one row of the list: the list's answer (/api/v1/incidents-open) is a lean row per
// incident with only the fields read here; an event's whole document works as well
function rowHtml(d, now = Date.now()) {
  const clocks = (d.clocks || []).filter(owed);
  return `<li class="row lvl-${d.level}" data-testid="incident-row" data-incident-id="${esc(d.id)}" data-status="${esc(d.status)}">
    <a href="#/incident/${encodeURIComponent(d.id)}"><span class="badge l${d.level}" data-testid="level">${esc(levelLabel(d))}</span>
    <strong>${esc(faultList(d))}</strong><span>${esc(joinNames(d.sites, siteName))}</span>
    <span class="muted">${t('detected')} ${esc(fmt(d.detected_at))}</span>
    <span class="tag">${t('status.' + d.status)}</span>${marks(d)}<span class="muted">${esc(d.id)}</span></a>
    <ul class="clocks">${clocks.map((c) => clockChip(c, now)).join('')}</ul></li>`;
}
function upsertRow(doc) {
  const old = S.open.get(doc.id);
  if (old && old.updated_at && doc.updated_at && doc.updated_at < old.updated_at) return; // stale
  const el = $(`[data-testid="incident-row"][data-incident-id="${CSS.escape(doc.id)}"]`);
  if (doc.status === 'resolved' || !shown(doc)) {
    if (doc.status === 'resolved') S.open.delete(doc.id); else S.open.set(doc.id, doc);
    if (el) el.remove();
  } else {
    S.open.set(doc.id, doc);
    const tpl = document.createElement('template');
    tpl.innerHTML = rowHtml(doc).trim();
    const row = tpl.content.firstChild;
    const list = $('#rows-' + (doc.level in { 1: 1, 2: 1, 3: 1 } ? doc.level : 3));
    if (el && el.parentNode === list) el.replaceWith(row);
    else { if (el) el.remove(); if (list) list.prepend(row); }
  }
  const counts = { 1: 0, 2: 0, 3: 0 };
  for (const d of S.open.values()) if (shown(d)) counts[d.level] = (counts[d.level] || 0) + 1;
  for (const n of [1, 2, 3]) { const c = $('#count-' + n); if (c) c.textContent = t('list.count', { n: counts[n] }); }
  const empty = $('#empty');
  if (empty && S.open.size) empty.remove();
}
async function oncallBox() {
  const box = $('#oncallbox');
  if (!box) return;
  try {
    const data = await api('/api/v1/oncall');
    box.innerHTML = `<h2>${t('oncall.title')}</h2>` + (data.rosters.length ? data.rosters.map((r) =>
      `<p><strong>${esc(r.id)}</strong>: ${r.layers.map((l) => `${esc(layerName(l.id))} ${esc(l.now.person ? l.now.person.name : '-')}`).join('；')}</p>`).join('')
      : `<p class="muted">${t('oncall.none')}</p>`);
  } catch (err) {
    if (!(err instanceof SignedOut)) box.textContent = problem(err);
  }
}
const layerName = (id) => (has('layer.' + id) ? t('layer.' + id) : id);

// every countdown, once a second
function tick() {
  const now = Date.now();
  for (const el of $$('[data-due]')) {
    const span = el.querySelector('.count');
    if (!span) continue;
    const [text, late] = countdown(el.dataset.status, Date.parse(el.dataset.due), now);
    if (span.textContent !== text) span.textContent = text;
    el.classList.toggle('late', late);
  }
}

// one incident
async function viewIncident(id) {
  S.view = { name: 'incident', id };
  setView(`<p class="noprint"><a href="#/">← ${t('inc.back')}</a></p><div id="inc"><p>${t('loading')}</p></div>
    <div id="actions" class="noprint"></div>`);
  await refreshIncident();
}
async function refreshIncident() {
  // refreshes overlap (an action's own and the stream's): only the latest one started may paint,
  // or a slow answer from before an action would put the old state back on screen
  const id = S.view.id;
  const seq = S.refreshSeq = (S.refreshSeq || 0) + 1;
  let doc;
  try {
    doc = await api('/api/v1/incidents/' + encodeURIComponent(id));
  } catch (err) {
    if (err instanceof SignedOut || S.view.id !== id || seq !== S.refreshSeq) return;
    const text = err.status === 403 ? t('inc.forbidden') : err.status === 404 ? t('inc.notfound') : problem(err);
    $('#inc').innerHTML = `<h1>${err.status || ''}</h1><p class="broken" data-testid="error-page">${esc(text)}</p>`;
    $('#actions').innerHTML = '';
    return;
  }
  if (S.view.name !== 'incident' || S.view.id !== id || seq !== S.refreshSeq) return;
  $('#inc').innerHTML = incidentHtml(doc);
  if (!S.dirty.size) renderActions(doc); // never wipe what someone is typing into a form
  tick();
}
function dl(pairs) {
  return `<dl class="facts">${pairs.filter((p) => p[1] !== null && p[1] !== undefined && p[1] !== '')
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`;
}
function detailText(e) {
  const d = e.detail || {};
  const bits = [];
  if (d.from !== undefined && d.to !== undefined) bits.push(`${d.from} → ${d.to}`);
  if (d.upgraded) bits.push(`${d.upgraded.from} → ${d.upgraded.to} (${d.upgraded.rule})`);
  if (d.clock) bits.push(d.clock);
  if (d.sent === false) bits.push(t('clock.notsent'));
  if (d.held_until) bits.push(t('clock.helduntil', { t: fmt(d.held_until) }));
  if (d.clocks_withdrawn) bits.push(t('clock.withdrawn', { clocks: d.clocks_withdrawn.clocks.join('、'), reason: d.clocks_withdrawn.reason }));
  if (d.flags) bits.push(d.flags.map((f) => t('flag.' + f)).join('、'));
  for (const k of ['reason', 'result', 'note']) if (d[k]) bits.push(d[k]);
  if (d.late) bits.push(t('clock.latefiled'));
  if (d.alerts !== undefined && e.action !== 'report_filed') bits.push(`${t('inc.alerts')}: ${d.alerts}`);
  return bits.join('；');
}
function factText(key, v) {
  if (key === 'units_share' && typeof v === 'number') return `${Math.round(v * 100)}%`;
  if (key === 'lasting_seconds' && typeof v === 'number') return dur(v * 1000);
  if (key === 'category') return has('category.' + v) ? t('category.' + v) : v;
  if (key === 'flags' && Array.isArray(v)) return v.map((f) => t('flag.' + f)).join('、') || t('none');
  if (key === 'sites' && Array.isArray(v)) return joinNames(v, siteName);
  if (Array.isArray(v)) return joinNames(v, unitName) || t('none');
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : v;
}
function incidentHtml(d) {
  const dec = d.decision || {};
  const facts = dec.facts || {};
  const clocks = (d.clocks || []).map((c) => `<tr class="clock" data-testid="clock" data-clock-id="${esc(c.id)}" data-status="${esc(c.status)}" data-due="${esc(c.due_at)}">
      <td data-label="${t('clock.title')}">${esc(clockTitle(c))} <span class="muted">${esc(c.source || '')}</span></td>
      <td data-label="${t('clock.audience')}">${esc(((c.audience || {}).to || []).join('、'))}${(c.audience || {}).cc && c.audience.cc.length ? `<br><span class="muted">${t('clock.cc')}: ${esc(c.audience.cc.join('、'))}</span>` : ''}</td>
      <td data-label="${t('clock.due')}">${esc(fmt(c.due_at))}${c.estimated ? ' ' + t('clock.estimated') : ''}<br><span class="count"></span></td>
      <td data-label="${t('clock.status')}">${t('clockstatus.' + c.status)}</td>
      <td data-label="${t('clock.filed')}">${c.filed ? esc(`${c.filed.by} ${fmt(c.filed.at)}`) + (c.filed.late ? ' ' + t('clock.latefiled') : '') : ''}</td></tr>`).join('');
  const alerts = (d.alerts || []).map((a) => `<tr><td data-label="${t('alert.fault')}">${esc(faultWords(a.labels.fault || a.labels.alertname || ''))}</td>
      <td data-label="${t('alert.site')}">${esc(siteName(a.labels.site || ''))}</td>
      <td data-label="${t('alert.target')}">${esc(a.labels.target || a.labels.instance || '')}</td>
      <td data-label="${t('alert.since')}">${esc(fmt(a.startsAt))}</td>
      <td data-label="${t('alert.until')}">${a.endsAt ? esc(fmt(a.endsAt)) : ''}</td>
      <td data-label="${t('alert.state')}">${t(a.status === 'firing' ? 'alert.firing' : 'alert.resolved')}</td>
      <td data-label="${t('alert.detail')}">${esc((a.annotations || {}).summary || (a.annotations || {}).description || '')}</td></tr>`).join('');
  const timeline = (d.timeline || []).map((e) => `<li data-testid="timeline-entry"><span class="muted">${esc(fmt(e.at))}</span>
      <strong>${esc(has('action.' + e.action) ? t('action.' + e.action) : e.action)}</strong> ${esc(e.actor)}
      <span class="muted">${esc(detailText(e))}</span></li>`).join('');
  const kinds = ['phone', 'written', 'final'];
  return `<h1><span class="badge l${d.level}" data-testid="level">${esc(levelLabel(d))}</span> ${esc(faultList(d))}</h1>
    <p><span class="tag" data-testid="status">${t('status.' + d.status)}</span>${marks(d)} <span class="muted">${esc(d.id)}</span></p>
    <section class="card"><h2>${t('inc.summary')}</h2>${dl([
      [t('inc.sites'), joinNames(d.sites, siteName)], [t('inc.units'), joinNames(d.units, unitName)],
      [t('inc.category'), has('category.' + d.category) ? t('category.' + d.category) : d.category], [t('inc.system'), d.system],
      [t('detected'), fmt(d.detected_at)], [t('inc.plan'), d.plan],
      [t('inc.flags'), (d.flags || []).map((f) => t('flag.' + f)).join('、')],
      [t('inc.acked'), d.acknowledged ? `${d.acknowledged.by} ${fmt(d.acknowledged.at)}` : ''],
      [t('inc.resolved'), d.resolved ? `${d.resolved.result}（${d.resolved.by} ${fmt(d.resolved.at)}）` : '']])}</section>
    <section class="card"><h2>${t('inc.clocks')}</h2><div class="scroll"><table class="stack"><thead><tr><th>${t('clock.title')}</th><th>${t('clock.audience')}</th>
      <th>${t('clock.due')}</th><th>${t('clock.status')}</th><th>${t('clock.filed')}</th></tr></thead><tbody>${clocks}</tbody></table></div></section>
    <section class="card"><h2>${t('inc.decision')}</h2>${dl([[t('decision.rule'), dec.rule], [t('decision.source'), dec.source],
      [t('decision.by'), dec.by], [t('decision.reason'), dec.reason]])}
      <h3 class="muted">${t('decision.facts')}</h3>${dl(Object.entries(facts).map(([k, v]) => [has('fact.' + k) ? t('fact.' + k) : k, factText(k, v)]))}</section>
    <section class="card"><h2>${t('inc.alerts')}</h2><div class="scroll"><table class="stack"><thead><tr><th>${t('alert.fault')}</th><th>${t('alert.site')}</th>
      <th>${t('alert.target')}</th><th>${t('alert.since')}</th><th>${t('alert.until')}</th><th>${t('alert.state')}</th><th>${t('alert.detail')}</th></tr></thead>
      <tbody>${alerts}</tbody></table></div></section>
    <section class="card"><h2>${t('inc.timeline')}</h2>
      <p data-testid="timeline-intact" class="${d.timeline_intact ? 'intact' : 'broken'}">${t(d.timeline_intact ? 'inc.intact' : 'inc.broken')}</p>
      <ol>${timeline}</ol></section>
    <section class="card noprint"><h2>${t('inc.drafts')}</h2><p>${kinds.map((k) =>
      `<a href="#/incident/${encodeURIComponent(d.id)}/draft/${k}">${t('draft.' + k)}</a>`).join(' · ')}</p></section>`;
}
function renderActions(d) {
  const box = $('#actions');
  if (!box) return;
  if (d.status === 'resolved' || !S.me.scopes.includes('incidents:write')) { box.innerHTML = ''; return; }
  const filable = (d.clocks || []).filter(owed);
  const flags = ['casualties', 'injuries', 'property_loss', 'loss_of_control'];
  box.innerHTML = `<section class="card"><h2>${t('inc.actions')}</h2>
    ${d.status === 'open' ? `<p><button type="button" class="primary" data-testid="action-ack" id="act-ack">${t('act.ack')}</button></p>` : ''}
    ${S.me.scopes.includes('incidents:level') ? `<form class="act" data-testid="action-level" id="f-level">
      <label>${t('act.level.new')}<select name="level">${[1, 2, 3].map((n) => `<option value="${n}"${n === d.level ? ' selected' : ''}>${t('level.' + n)}</option>`).join('')}</select></label>
      <label>${t('act.reason')}<input name="reason" type="text" required maxlength="2000"></label>
      <button type="submit">${t('act.level')}</button></form>` : ''}
    <form data-testid="action-flags" id="f-flags"><fieldset><legend>${t('act.flags')}</legend>
      ${flags.map((f) => `<label class="check"><input type="checkbox" name="flag" value="${f}"${(d.flags || []).includes(f) ? ' checked disabled' : ''}>${t('flag.' + f)}</label>`).join('')}
      <label>${t('act.reason')}<input name="reason" type="text" required maxlength="2000"></label>
      <button type="submit">${t('act.flags')}</button></fieldset></form>
    ${filable.length ? `<form class="act" data-testid="action-report" id="f-report">
      <label>${t('clock.title')}<select name="clock">${filable.map((c) => `<option value="${esc(c.id)}">${esc(clockTitle(c))}</option>`).join('')}</select></label>
      <label>${t('act.report.at')}<input name="at" type="datetime-local"></label>
      <label>${t('act.report.note')}<input name="note" type="text" maxlength="2000"></label>
      <button type="submit">${t('act.report')}</button></form>` : ''}
    <form class="act" data-testid="action-resolve" id="f-resolve">
      <label>${t('act.resolve.result')}<textarea name="result" rows="2" required maxlength="2000"></textarea></label>
      <button type="submit" class="danger">${t('act.resolve')}</button></form></section>`;
  box.oninput = (ev) => { const f = ev.target.closest('form'); if (f) S.dirty.add(f.id); };
  const base = '/api/v1/incidents/' + encodeURIComponent(d.id);
  const ack = $('#act-ack');
  if (ack) ack.onclick = () => act(base + '/ack', { by: S.me.name }, 'act.ack');
  if ($('#f-level')) $('#f-level').onsubmit = (ev) => { ev.preventDefault(); const f = ev.target;
    act(base + '/level', { level: +f.level.value, reason: f.reason.value, by: S.me.name }, 'act.level', f.id); };
  $('#f-flags').onsubmit = (ev) => { ev.preventDefault(); const f = ev.target;
    const chosen = $$('input[name=flag]:checked:not(:disabled)', f).map((x) => x.value);
    if (!chosen.length) { say(t('act.noflags'), 'bad'); return; }
    act(base + '/flags', { flags: chosen, reason: f.reason.value, by: S.me.name }, 'act.flags', f.id); };
  const rep = $('#f-report');
  if (rep) rep.onsubmit = (ev) => { ev.preventDefault(); const f = ev.target;
    const body = { by: S.me.name };
    if (f.note.value.trim()) body.note = f.note.value.trim();
    if (f.at.value) {
      const ts = zoned(f.at.value);
      if (ts === null || ts > Date.now() + 60000) { say(t('act.future'), 'bad'); return; }
      body.at = new Date(ts).toISOString();
    }
    act(base + '/reports/' + encodeURIComponent(f.clock.value), body, 'act.report', f.id); };
  $('#f-resolve').onsubmit = (ev) => { ev.preventDefault();
    act(base + '/resolve', { result: ev.target.result.value, by: S.me.name }, 'act.resolve', ev.target.id); };
}
async function act(path, body, what, form) {
  try {
    await api(path, { method: 'POST', body });
  } catch (err) {
    if (!(err instanceof SignedOut)) say(problem(err), 'bad');
    return;
  }
  say(t('act.done', { what: t(what) }), 'ok');
  // only the form just sent is done: text typed meanwhile into another form stays
  if (form) S.dirty.delete(form);
  await refreshIncident();
}

// a report draft, ready to print
async function viewDraft(id, kind) {
  S.view = { name: 'draft', id };
  const link = (k) => `<a href="#/incident/${encodeURIComponent(id)}/draft/${k}"${k === kind ? ' aria-current="page"' : ''}>${t('draft.' + k)}</a>`;
  setView(`<p class="noprint"><a href="#/incident/${encodeURIComponent(id)}">← ${esc(id)}</a> · ${['phone', 'written', 'final'].map(link).join(' · ')}</p>
    <h1 class="noprint">${t('draft.' + kind)}</h1><p class="muted noprint">${t('draft.help')}</p>
    <p class="noprint"><button type="button" class="primary" id="print">${t('draft.print')}</button></p>
    <pre class="draft" data-testid="draft">${t('loading')}</pre>`);
  $('#print').onclick = () => window.print();
  try {
    const text = await api(`/api/v1/incidents/${encodeURIComponent(id)}/report?kind=${encodeURIComponent(kind)}&lang=${S.lang}`, { accept: 'text/plain' });
    $('[data-testid=draft]').textContent = typeof text === 'string' ? text : (text.text || JSON.stringify(text, null, 2));
  } catch (err) {
    if (!(err instanceof SignedOut)) $('[data-testid=draft]').textContent = err.status === 403 ? t('inc.forbidden') : problem(err);
  }
}

// who is on duty, and the shift hand-off report
async function viewOncall() {
  S.view = { name: 'oncall' };
  setView(`<h1>${t('nav.oncall')}</h1><div id="oc" data-testid="oncall-now">${t('loading')}</div>
    <h2>${t('oncall.handoff')}</h2><pre class="draft" id="handoff">${t('loading')}</pre>`);
  try {
    const data = await api('/api/v1/oncall');
    $('#oc').innerHTML = data.rosters.length ? data.rosters.map((r) => `<section class="card"><h2>${t('oncall.roster')} ${esc(r.id)}</h2>
      <table class="stack"><thead><tr><th>${t('oncall.layer')}</th><th>${t('oncall.now')}</th><th>${t('oncall.next')}</th></tr></thead><tbody>
      ${r.layers.map((l) => `<tr><td data-label="${t('oncall.layer')}">${esc(layerName(l.id))}</td>
        <td data-label="${t('oncall.now')}"><strong>${esc(l.now.person ? l.now.person.name : '-')}</strong>${l.now.override ? t('oncall.override') : ''}
          <span class="muted">${t('oncall.until', { t: fmt(l.now.to) })}</span></td>
        <td data-label="${t('oncall.next')}">${esc(l.next.person ? l.next.person.name : '-')} <span class="muted">${t('oncall.from', { t: fmt(l.next.from) })}</span></td></tr>`).join('')}
      </tbody></table></section>`).join('') : `<p>${t('oncall.none')}</p>`;
    if (!data.rosters.length) { $('#handoff').textContent = t('oncall.none'); return; }
    const text = await api(`/api/v1/shift-report?format=text&lang=${S.lang}&roster=${encodeURIComponent(data.rosters[0].id)}`, { accept: 'text/plain' });
    $('#handoff').textContent = text;
  } catch (err) {
    if (!(err instanceof SignedOut)) say(problem(err), 'bad');
  }
}

// maintenance windows: the config's, and announced ones where this hallmon has the API
async function viewMaintenance() {
  S.view = { name: 'maintenance' };
  const rows = [];
  for (const u of S.me.organisation.units) for (const s of u.sites) for (const w of s.maintenance) rows.push({ site: s.id, ...w, source: t('mnt.config') });
  let announced = null;
  try {
    const data = await api('/api/v1/maintenance');
    announced = Array.isArray(data) ? data : (data.windows || data.maintenance || []);
  } catch (err) {
    if (err instanceof SignedOut) return;
  }
  for (const w of announced || []) {
    for (const site of w.sites || [w.site]) rows.push({ site, from: w.from, to: w.to, reason: w.reason, id: w.id, source: t('mnt.runtime') });
  }
  const sites = S.me.organisation.units.flatMap((u) => u.sites);
  setView(`<h1>${t('mnt.title')}</h1><p class="muted">${t('mnt.help')}</p>
    <table class="stack"><thead><tr><th>${t('mnt.site')}</th><th>${t('mnt.from')}</th><th>${t('mnt.to')}</th><th>${t('mnt.reason')}</th><th>${t('mnt.source')}</th><th></th></tr></thead>
    <tbody>${rows.map((w) => `<tr><td data-label="${t('mnt.site')}">${esc(siteName(w.site))}</td><td data-label="${t('mnt.from')}">${esc(fmt(w.from))}</td>
      <td data-label="${t('mnt.to')}">${esc(fmt(w.to))}</td><td data-label="${t('mnt.reason')}">${esc(w.reason || '')}</td><td data-label="${t('mnt.source')}">${esc(w.source)}</td>
      <td>${w.id && S.me.scopes.includes('maintenance:write') ? `<button type="button" data-end="${esc(w.id)}">${t('mnt.end')}</button>` : ''}</td></tr>`).join('') || `<tr><td colspan="6">${t('none')}</td></tr>`}</tbody></table>
    ${announced === null ? `<p class="muted">${t('mnt.noapi')}</p>` : !S.me.scopes.includes('maintenance:write') ? '' : `<form class="act card" id="f-mnt"><strong>${t('mnt.announce')}</strong>
      <label>${t('mnt.site')}<select name="site">${sites.map((s) => `<option value="${esc(s.id)}">${esc(s.name)}</option>`).join('')}</select></label>
      <label>${t('mnt.from')}<input type="datetime-local" name="from" required></label><label>${t('mnt.to')}<input type="datetime-local" name="to" required></label>
      <label>${t('mnt.reason')}<input name="reason" type="text" required></label><button type="submit">${t('mnt.announce')}</button></form>`}`);
  for (const b of $$('[data-end]')) b.onclick = () => mntCall(`/api/v1/maintenance/${encodeURIComponent(b.dataset.end)}`, 'DELETE');
  const f = $('#f-mnt');
  if (f) f.onsubmit = (ev) => { ev.preventDefault();
    mntCall('/api/v1/maintenance', 'POST', { sites: [f.site.value], from: new Date(zoned(f.from.value)).toISOString(),
      to: new Date(zoned(f.to.value)).toISOString(), reason: f.reason.value, by: S.me.name }); };
}
async function mntCall(path, method, body) {
  try { await api(path, { method, body }); } catch (err) { if (!(err instanceof SignedOut)) say(problem(err), 'bad'); return; }
  await viewMaintenance();
  say(t('act.done', { what: t('mnt.title') }), 'ok');
}

// closed incidents, searched by site, unit, level and month
async function viewClosed() {
  S.view = { name: 'closed' };
  const units = S.me.organisation.units;
  const opt = (v, label) => `<option value="${esc(v)}">${esc(label)}</option>`;
  setView(`<h1>${t('closed.title')}</h1><form class="act card" id="f-closed">
    <label>${t('closed.unit')}<select name="unit">${opt('', t('closed.any'))}${units.map((u) => opt(u.id, u.name)).join('')}</select></label>
    <label>${t('closed.site')}<select name="site">${opt('', t('closed.any'))}${units.flatMap((u) => u.sites).map((s) => opt(s.id, s.name)).join('')}</select></label>
    <label>${t('closed.level')}<select name="level">${opt('', t('closed.any'))}${[1, 2, 3].map((n) => opt(n, t('level.' + n))).join('')}</select></label>
    <label>${t('closed.month')}<input type="month" name="month"></label>
    <button type="submit" class="primary">${t('closed.search')}</button></form><div id="closed"></div>`);
  const f = $('#f-closed');
  f.onsubmit = async (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams({ status: 'resolved' });
    for (const k of ['unit', 'site', 'level']) if (f[k].value) q.set(k, f[k].value);
    let until = null;
    if (f.month.value) {
      const [y, m] = f.month.value.split('-').map(Number);
      q.set('since', new Date(zoned(`${f.month.value}-01T00:00`)).toISOString());
      until = zoned(`${m === 12 ? y + 1 : y}-${String(m === 12 ? 1 : m + 1).padStart(2, '0')}-01T00:00`);
    }
    const mine = (S.search = (S.search || 0) + 1);
    $('#closed').setAttribute('aria-busy', 'true'); // until this search, not an earlier one, is shown
    try {
      const docs = (await allPages(q.toString(), 10)).filter((d) => until === null || Date.parse(d.detected_at) < until);
      if (mine !== S.search || S.view.name !== 'closed') return; // a later search, or another view, took over
      $('#closed').innerHTML = docs.length ? `<table class="stack"><thead><tr><th>ID</th><th>${t('inc.level')}</th><th>${t('inc.faults')}</th>
        <th>${t('inc.sites')}</th><th>${t('detected')}</th><th>${t('closed.resolved_at')}</th><th>${t('inc.resolved')}</th></tr></thead><tbody>
        ${docs.map((d) => `<tr data-testid="incident-row" data-incident-id="${esc(d.id)}"><td><a href="#/incident/${encodeURIComponent(d.id)}">${esc(d.id)}</a></td>
          <td data-label="${t('inc.level')}"><span class="badge l${d.level}" data-testid="level">${esc(levelLabel(d))}</span></td>
          <td data-label="${t('inc.faults')}">${esc(faultList(d))}</td><td data-label="${t('inc.sites')}">${esc(joinNames(d.sites, siteName))}</td>
          <td data-label="${t('detected')}">${esc(fmt(d.detected_at))}</td><td data-label="${t('closed.resolved_at')}">${esc(fmt(d.resolved && d.resolved.at))}</td>
          <td data-label="${t('inc.resolved')}">${esc(d.resolved ? d.resolved.result : '')}</td></tr>`).join('')}</tbody></table>` : `<p>${t('closed.empty')}</p>`;
      $('#closed').setAttribute('aria-busy', 'false');
    } catch (err) {
      if (mine === S.search && $('#closed')) $('#closed').setAttribute('aria-busy', 'false');
      if (!(err instanceof SignedOut)) say(problem(err), 'bad');
    }
  };
  f.requestSubmit();
}

// the month's summary, where this hallmon has it
async function viewMonthly() {
  S.view = { name: 'monthly' };
  const now = new Date();
  const month = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}`;
  setView(`<h1>${t('monthly.title')}</h1><form class="act noprint" id="f-month"><label>${t('monthly.month')}<input type="month" name="month" value="${month}" required></label>
    <button type="submit">${t('monthly.show')}</button> <button type="button" id="print">${t('draft.print')}</button></form><pre class="draft" id="monthly"></pre>`);
  $('#print').onclick = () => window.print();
  const f = $('#f-month');
  f.onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      const data = await api(`/api/v1/reports/monthly?month=${encodeURIComponent(f.month.value)}&lang=${S.lang}`, { accept: 'text/plain' });
      $('#monthly').textContent = typeof data === 'string' ? data : (data.text || JSON.stringify(data, null, 2));
    } catch (err) {
      if (err instanceof SignedOut) return;
      $('#monthly').textContent = err.status === 404 || err.status === 405 ? t('monthly.none') : problem(err);
    }
  };
  f.requestSubmit();
}

// the audit log (admins): sign-ins, failures, locks, sign-outs, account and token changes
async function viewAudit() {
  S.view = { name: 'audit' };
  let data;
  try { data = await api('/api/v1/audit?limit=500'); } catch (err) { if (!(err instanceof SignedOut)) say(problem(err), 'bad'); return; }
  const cols = ['at', 'event', 'account', 'address', 'actor', 'detail'];
  setView(`<h1>${t('audit.title')}</h1><table class="stack" data-testid="audit-log"><thead><tr>${cols.map((c) => `<th>${t('audit.' + c)}</th>`).join('')}</tr></thead>
    <tbody>${data.entries.map((e) => `<tr data-testid="audit-entry" data-event="${esc(e.event)}">${cols.map((c) => `<td data-label="${t('audit.' + c)}">${esc(
      c === 'at' ? fmt(e.at) : c === 'event' && has('audit.' + e.event) ? t('audit.' + e.event) : e[c])}</td>`).join('')}</tr>`).join('')
      || `<tr><td colspan="6">${t('none')}</td></tr>`}</tbody></table>`);
}

// ── start ──────────────────────────────────────────────────────────────────────
function applyLang() {
  document.documentElement.lang = S.lang === 'zh' ? 'zh-CN' : 'en';
  document.title = `hallmon · ${t('app.title')}`;
  for (const el of $$('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  const b = $('#lang');
  b.textContent = t('lang.switch');
  b.setAttribute('aria-label', t('lang.switch.label'));
  if (S.me) $('#who').textContent = t('signin.as', { name: S.me.name });
}
async function boot() {
  takeFragmentToken();
  try {
    S.cat = await (await fetch('/console/catalogue.json', { cache: 'no-store' })).json();
  } catch (err) {
    setView('<p>hallmon cannot be reached. / 无法连接 hallmon 服务。</p>');
    return;
  }
  applyLang();
  $('#lang').onclick = () => {
    S.lang = S.lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('hallmon.lang', S.lang);
    S.fmt = null;
    applyLang();
    if (S.me) route(); else showSignIn();
  };
  $('#signout').onclick = () => signOut();
  $('#signout-all').onclick = async () => {
    try { await api('/api/v1/session/everywhere', { method: 'POST' }); } catch (err) { if (err instanceof SignedOut) return; }
    signOut('', false);
  };
  window.addEventListener('hashchange', route);
  setInterval(tick, 1000);
  if (!S.token) { showSignIn(); return; }
  await start();
}
boot();
