// What every live page of the dashboard uses: the server's clock and times as the pages write
// them, the server's rules for a status repeated (held to them by
// tests/integration/test_dashboard_rules.py), the connection banner, one followed event stream,
// pages read as HTML and timers that rest while the page is hidden. dashboard.js runs the pages.

const serverNow = Date.parse(document.body.dataset.now || "") || Date.now();
export const skew = serverNow - Date.now(); // the server's clock, to age its timestamps

// ---- times -----------------------------------------------------------------------------
export function parse(iso) {
  return Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));
}

// A moment in the words of the pages' own tooltips (tracker.web.templating.when):
// 2026-12-01 14:02:51 UTC.
export function when(iso) {
  const at = parse(iso);
  return Number.isNaN(at) ? "" : new Date(at).toISOString().slice(0, 19).replace("T", " ") + " UTC";
}

// tracker.core.texts.age: 2d3h, 4h05m, 12m30s, 45s (held to it with the rules below).
export function age(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const two = (n) => String(n).padStart(2, "0");
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${two(m)}m`;
  if (m) return `${m}m${two(s)}s`;
  return `${s}s`;
}

export function tick(root) {
  const now = Date.now() + skew;
  for (const el of (root || document).querySelectorAll("time[data-age], time[data-ago]")) {
    const at = parse(el.getAttribute("datetime"));
    if (Number.isNaN(at)) continue;
    const text = age(now - at) + ("ago" in el.dataset ? " ago" : "");
    if (el.textContent !== text) el.textContent = text;
  }
}

const localFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
export function localize(root) {
  for (const el of (root || document).querySelectorAll("time[data-local]")) {
    const at = parse(el.getAttribute("datetime"));
    if (Number.isNaN(at)) continue;
    el.title = el.textContent;
    el.textContent = localFormat.format(new Date(at));
  }
}

// ---- the server's rules, repeated -------------------------------------------------------
// tests/integration/test_dashboard_rules.py holds each function here to the Python rule it
// repeats, over the same inputs; what differs between the languages comes from the server.
const rulesData = document.getElementById("rules");
const rules = rulesData
  ? JSON.parse(rulesData.textContent)
  : { tones: {}, folds: {}, spaces: "", no_status: "" };
const sets = Object.fromEntries(Object.entries(rules.tones).map(([k, v]) => [k, new Set(v)]));
const spaces = new Set(rules.spaces);

// Python's status.strip().casefold(), as far as telling the words of `rules.tones` goes.
function folded(status) {
  const chars = [...status];
  let start = 0;
  let end = chars.length;
  while (start < end && spaces.has(chars[start])) start++;
  while (end > start && spaces.has(chars[end - 1])) end--;
  return chars.slice(start, end).map((c) => rules.folds[c] ?? c.toLowerCase()).join("");
}

// tracker.web.views.tone
export function tone(status, reason) {
  if (reason === "completed") return "done";
  if (reason === "failed") return "failed";
  if (reason != null) return "ended";
  if (status == null) return "unknown";
  const word = folded(String(status));
  for (const kind of ["done", "failed", "queued"]) if (sets[kind] && sets[kind].has(word)) return kind;
  return "running";
}

// tracker.web.views.status_text
export function statusText(status) {
  return status || rules.no_status;
}

// tracker.core.texts.error_line
export function errorLine(error, httpStatus) {
  const inObject = error !== null && typeof error === "object" && !Array.isArray(error);
  const message = inObject ? error.message : error;
  const text = message == null || message === ""
    ? "request failed"
    : typeof message === "string" ? message : JSON.stringify(message);
  return httpStatus == null ? text : `HTTP ${httpStatus}: ${text}`;
}

// For the test that holds these to the server's rules.
window.dashboardRules = Object.freeze({ age, tone, errorLine, statusText });

export const setText = (el, text) => { if (el && el.textContent !== text) el.textContent = text; };

// ---- the connection banner ----------------------------------------------------------------
const banner = document.getElementById("connection");
export function say(text, link) {
  if (!banner) return;
  if (!text) { banner.hidden = true; banner.textContent = ""; return; }
  banner.textContent = text + " ";
  if (link) {
    const a = document.createElement("a");
    a.href = link.href; a.textContent = link.text;
    banner.append(a);
  }
  banner.hidden = false;
}

// Clears the banner if what it says begins with `prefix`: a trouble that is over.
export function unsay(prefix) {
  if (banner && banner.textContent.startsWith(prefix)) say("");
}

function signIn() {
  const next = location.pathname + location.search;
  say("Your session has ended.", { href: "/login?next=" + encodeURIComponent(next), text: "Sign in again" });
}

export async function signedIn() {
  const response = await fetch("/session", { cache: "no-store" });
  return (await response.json()).signed_in === true;
}

async function signedOut() {
  try { return !(await signedIn()); }
  catch { return false; }
}

// One EventSource, reopened after a failure it does not recover from itself, until the
// returned function stops it; `opened` runs once, when it first connects.
export function follow(url, on, opened) {
  let source = null;
  let stopped = false;
  const open = () => {
    if (stopped) return;
    source = new EventSource(url);
    source.onopen = () => {
      say("");
      if (opened) { opened(); opened = null; }
    };
    source.onerror = async () => {
      if (source.readyState === EventSource.CLOSED) {
        if (await signedOut()) { signIn(); return; }
        say("Live updates stopped: the server cannot be reached. Trying again…");
        setTimeout(open, 5000);
      } else {
        say("Live updates paused: reconnecting…");
      }
    };
    for (const [name, handle] of Object.entries(on)) {
      source.addEventListener(name, (event) => handle(JSON.parse(event.data)));
    }
  };
  open();
  return () => { stopped = true; if (source) source.close(); };
}

export async function fetchHtml(url) {
  const response = await fetch(url, { cache: "no-store", headers: { Accept: "text/html" } });
  if (response.redirected && new URL(response.url).pathname === "/login") { signIn(); return null; }
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.text();
}

// Timers that rest while the page is hidden, and run at once when it shows again.
export function every(ms, job) {
  let timer = null;
  const run = async () => { timer = null; await job(); if (!document.hidden) timer = setTimeout(run, ms); };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer === null) run();
  });
  timer = setTimeout(run, ms);
}
