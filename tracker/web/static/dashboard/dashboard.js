// The dashboard's script: keeps the server-rendered pages live without reloading them.
// The overview moves its rows from /v1/events (one EventSource, only the unfinished tasks in
// view, what changed in the last beat (BEAT) applied in one frame) and swaps in the counts,
// read at the start of each beat, in that same frame; a task's page swaps in its moving parts,
// rendered by the server, when its events arrive. Everything still reads without this script; it adds
// liveness, local times and the "/" shortcut (docs/dashboard.md).
import {
  age, every, errorLine, fetchHtml, follow, localize, parse, say, setText, signedIn, skew,
  statusText, tick, tone, unsay, when,
} from "./live.js";

const page = document.body.dataset.page;
const TASK_REFRESH_GAP = 1000;
const BEAT = 3000;
const READ_WAIT = 1000; // ms a beat waits for what it reads before it draws without it
const SETTLE = 500; // ms the overview stands still before it follows the rows then in view
// ms two streams overlap when the rows followed change: more than a beat, as the old stream
// may be resting out its interval (a beat) with events the new one starts after.
const OVERLAP = BEAT + 2000;
const reads = []; // what each beat reads before it draws
const beats = []; // what each beat draws, in one frame

// ---- the overview ---------------------------------------------------------------------------
function overview() {
  const table = document.querySelector("table.tasks");
  const counts = document.getElementById("counts");
  const fresh = document.getElementById("fresh");
  let lastCounts = "";

  let due = null; // counts read, to be shown in the next beat's frame
  const readCounts = async () => {
    try {
      const html = await fetchHtml(counts.dataset.summary);
      if (html === null) return;
      if (html !== lastCounts) { due = html; lastCounts = html; }
      unsay("Cannot reach");
    } catch {
      say("Cannot reach the server: the counts are not current. Trying again…");
    }
  };
  let reading = null; // one read at a time: a slow one is waited for by the next beat too
  const refreshCounts = () => (reading ??= readCounts().finally(() => { reading = null; }));
  const showCounts = () => {
    if (due === null) return;
    counts.innerHTML = due;
    due = null;
    // The server counts the tasks registered after the newest this page showed.
    const news = counts.querySelector("[data-new]");
    if (fresh && news) {
      setText(fresh.firstElementChild, news.textContent);
      fresh.hidden = false;
    }
  };
  reads.push(refreshCounts);
  beats.push(showCounts);
  // Counts still being read when the page was made are asked for at once.
  if (!counts.querySelector("ul.counts")) refreshCounts();

  if (!table || !table.dataset.events) { beats.push(() => tick()); return; }
  const rows = new Map([...table.tBodies[0].rows].map((row) => [row.dataset.task, row]));
  const unfinished = new Set(new URL(table.dataset.events, location.href).searchParams.getAll("task_id"));
  const pending = new Map();
  // Only the rows on the screen (or about to be) are followed: each event costs the browser
  // more than drawing it, and a hundred rows would send a hundred a second where the fifteen
  // in view send fifteen. A row scrolled to is read afresh, since it missed its events.
  const shown = new Set();
  let followed = null; // none yet: the rows followed first are as fresh as the page
  let stopFollowing = null;
  let settling = null;
  let first = true;
  const watcher = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) shown.add(entry.target.dataset.task);
      else shown.delete(entry.target.dataset.task);
    }
    // Not a new stream per scrolled pixel: once the page has stood still a moment.
    clearTimeout(settling);
    settling = setTimeout(followShown, first ? 0 : SETTLE);
    first = false;
  }, { rootMargin: "200px 0px" });
  for (const row of rows.values()) watcher.observe(row);
  beats.push(flush);

  const handlers = {
    snapshot: (s) => {
      const change = { polledAt: s.polled_at };
      if (s.status != null) { change.status = s.status; change.progress = s.progress; }
      change.error = s.error == null ? "" : errorLine(s.error, s.status == null ? s.http_status : null);
      queue(s.task_id, change);
    },
    finished: (f) => {
      unfinished.delete(f.task_id);
      queue(f.task_id, { status: f.status, progress: f.progress, reason: f.finish_reason });
    },
  };

  function followShown() {
    const wanted = [...shown].filter((taskId) => unfinished.has(taskId)).sort();
    if (followed !== null && wanted.join("\n") === followed.join("\n")) return;
    const back = followed === null ? [] : wanted.filter((taskId) => !followed.includes(taskId));
    const previous = stopFollowing;
    followed = wanted;
    stopFollowing = null;
    if (!wanted.length) { if (previous) previous(); return; }
    // The rows move once a beat, so the server sends once a beat too: one chunk to take in
    // where a read four times a second would bring four.
    const query = wanted.map((taskId) => ["task_id", taskId]);
    query.push(["interval", String(BEAT / 1000)]);
    const url = "/v1/events?" + new URLSearchParams(query);
    stopFollowing = follow(url, handlers, () => {
      // The old stream runs on a moment, so that the rows both follow miss nothing between
      // the two; an event twice only writes the same values twice.
      if (previous) setTimeout(previous, OVERLAP);
      for (const taskId of back) reread(taskId);
    });
  }

  // A row's task as it is now, from the API, once it is followed again.
  async function reread(taskId) {
    let task;
    try {
      const response = await fetch("/v1/tasks/" + encodeURIComponent(taskId), { cache: "no-store" });
      if (!response.ok) return; // its next event moves it
      task = await response.json();
    } catch { return; }
    if (task.finished) unfinished.delete(taskId);
    const change = { status: task.status, progress: task.progress, reason: task.finish_reason, polledAt: task.last_polled_at };
    if (task.last_error != null) change.error = task.last_error;
    queue(taskId, change);
  }

  const queue = (taskId, change) => {
    if (!rows.has(taskId)) return; // not on this page
    pending.set(taskId, Object.assign(pending.get(taskId) || {}, change));
  };

  function flush() {
    for (const [taskId, change] of pending) {
      if (!shown.has(taskId)) continue;
      pending.delete(taskId);
      apply(rows.get(taskId), change);
    }
    for (const taskId of shown) tick(rows.get(taskId));
  }

  function apply(row, change) {
    if ("status" in change || "reason" in change) {
      const kind = tone(change.status ?? null, change.reason ?? null);
      const name = "t-" + kind;
      if (row.className !== name) row.className = name;
      const badge = row.querySelector("[data-status]");
      if (badge) {
        if ("status" in change) setText(badge, statusText(change.status));
        if (badge.className !== "status " + name) badge.className = "status " + name;
      }
    }
    if (change.progress != null) {
      const bar = row.querySelector("progress");
      if (bar && bar.value !== change.progress) bar.value = change.progress;
      setText(row.querySelector("[data-pct]"), change.progress + "%");
    }
    if (change.polledAt) {
      const cell = row.querySelector("[data-polled]");
      let time = cell.querySelector("time");
      if (!time) {
        time = document.createElement("time");
        time.dataset.ago = "";
        cell.replaceChildren(time);
      }
      time.setAttribute("datetime", change.polledAt);
      time.title = when(change.polledAt);
      setText(time, age(Date.now() + skew - parse(change.polledAt)) + " ago");
    }
    if ("error" in change) {
      const span = row.querySelector("[data-error] span");
      setText(span, change.error);
      if (span) span.title = change.error;
    }
    if (change.reason) setText(row.querySelector("[data-reason]"), change.reason.replaceAll("_", " "));
  }
}

// ---- one task -----------------------------------------------------------------------------
// The overview's choice of tasks to act on: rows ticked, the page's at once, or every task
// the filter matches (then the rows show ticked and send nothing: the filter says which).
function choosing() {
  const form = document.getElementById("bulk");
  if (!form) return;
  const picks = () => [...document.querySelectorAll("input.pick")];
  const page = document.getElementById("pick-page");
  const all = document.getElementById("all-matching");
  const chosen = document.getElementById("chosen");
  const buttons = [...form.querySelectorAll("button[name=action]")];
  const show = () => {
    const ticked = picks().filter((box) => box.checked).length;
    chosen.textContent = all.checked ? "" : ticked ? `${ticked} chosen` : "Tick tasks to act on them";
    for (const button of buttons) button.disabled = !all.checked && !ticked;
    page.checked = ticked > 0 && ticked === picks().length;
    page.indeterminate = ticked > 0 && ticked < picks().length;
  };
  page.hidden = false;
  page.addEventListener("change", () => {
    for (const box of picks()) box.checked = page.checked;
    show();
  });
  all.addEventListener("change", () => {
    for (const box of picks()) { box.checked = all.checked; box.disabled = all.checked; }
    page.disabled = all.checked;
    show();
  });
  document.addEventListener("change", (event) => {
    if (event.target.classList && event.target.classList.contains("pick")) show();
  });
  show();
}

function task() {
  const live = document.getElementById("live");
  const said = document.getElementById("said");
  if (!live || !live.dataset.events) return;
  let waiting = false;
  let last = 0;
  let stop = null;

  async function refresh() {
    waiting = false;
    last = Date.now();
    let html;
    try { html = await fetchHtml(live.dataset.live); } catch { say("Cannot reach the server: this page is not current. Trying again…"); return; }
    if (html === null) return;
    say("");
    const focused = document.activeElement && live.contains(document.activeElement) ? document.activeElement.id : "";
    const open = [...live.querySelectorAll("details[open]")].map((d) => d.id).filter(Boolean);
    live.innerHTML = html;
    for (const id of open) { const d = document.getElementById(id); if (d) d.open = true; }
    if (focused) { const el = document.getElementById(focused); if (el) el.focus(); }
    localize(live);
    tick(live);
    const now = live.querySelector("[data-now]");
    if (now && said && said.textContent !== now.dataset.now) said.textContent = now.dataset.now;
    if (live.querySelector(".summary .reason") && stop) { stop(); stop = null; }
  }

  const soon = () => {
    if (waiting) return;
    waiting = true;
    setTimeout(refresh, Math.max(0, last + TASK_REFRESH_GAP - Date.now()));
  };
  stop = follow(live.dataset.events, { snapshot: soon, finished: soon });
}

// ---- every page -----------------------------------------------------------------------------
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button || !navigator.clipboard) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    const text = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = text; }, 1500);
  });
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
  const search = document.getElementById("f-q");
  if (search) { event.preventDefault(); search.focus(); search.select(); }
});

localize();
if (page === "overview") { overview(); choosing(); }
if (page === "task") task();
// One beat (BEAT) reads the counts, then moves everything that changed since the last in one
// frame: the rows of the events that came meanwhile, the counts, and the ages
// (docs/performance.md, The dashboard).
if (page !== "overview") beats.push(() => tick());
every(BEAT, async () => {
  const read = Promise.all(reads.map((job) => job()));
  await Promise.race([read, new Promise((done) => { setTimeout(done, READ_WAIT); })]);
  requestAnimationFrame(() => { for (const job of beats) job(); });
});
if (page === "login") {
  // A link followed from another site arrives without the SameSite=Strict cookie: a
  // browser that is signed in after all goes straight on.
  const form = document.querySelector("form[data-next]");
  signedIn().then((yes) => {
    if (yes && form) location.replace(form.dataset.next);
  }, () => {});
}
const focus = document.getElementById("register-errors") || document.getElementById("register-result");
if (focus) focus.focus();
