// anyjob dashboard: plain modern JavaScript, no build step. Live over GET api/events (SSE);
// every list is a server-side page (GET api/jobs?state=...&limit=...&offset=...).
const PAGE = 25;
const TABS = {
  active: { states: ["running", "canceling"], title: "Active jobs" },
  scheduled: { states: ["created"], title: "Scheduled jobs" },
  succeeded: { states: ["succeeded"], title: "Succeeded jobs" },
  failed: { states: ["failed"], title: "Failed jobs" },
  canceled: { states: ["canceled"], title: "Canceled jobs" },
};
const DONE = new Set(["succeeded", "failed", "canceled"]);
const $ = (id) => document.getElementById(id);

const view = { tab: "active", offset: 0, search: null, rows: new Map(), detail: null };
const known = new Map(); // job id -> latest state seen on the stream (progress vs state change)

// -- talking to the API --------------------------------------------------------------------

async function api(method, path) {
  const response = await fetch(path, { method, headers: { accept: "application/json" } });
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    throw Object.assign(new Error(message), { status: response.status });
  }
  return body;
}

function notice(text) {
  $("notice").textContent = text || "";
}

// -- the list ------------------------------------------------------------------------------

function percent(progress) {
  return Math.round(Math.max(0, Math.min(1, progress)) * 100);
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("aria-") || key === "role" || key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function fillProgress(cells, job) {
  const pct = percent(job.progress);
  const words = job.message ? `${pct} % (${job.message})` : `${pct} %`;
  cells.bar.setAttribute("aria-valuenow", String(pct));
  cells.bar.setAttribute("aria-valuetext", words);
  cells.fill.style.width = `${pct}%`;
  cells.pct.textContent = `${pct} %`;
  cells.msg.textContent = job.message || "";
}

function fillState(cells, job) {
  cells.state.textContent = job.state;
  cells.state.className = `state state-${job.state}`;
  cells.row.className = `row-${job.state}`;
  cells.cancel.hidden = DONE.has(job.state) || job.state === "canceling";
  cells.retry.hidden = !(job.state === "failed" || job.state === "canceled");
  cells.remove.hidden = !DONE.has(job.state);
}

function action(label, verb, job, run) {
  return el("button", {
    type: "button",
    textContent: label,
    "aria-label": `${label} job ${job.name} (${job.id})`,
    "data-action": verb,
    onclick: run,
  });
}

function labelText(labels) {
  return Object.entries(labels || {}).map(([key, value]) => `${key}: ${value}`).join(", ");
}

function makeRow(job) {
  const cells = {};
  cells.bar = el("div", {
    class: "bar",
    role: "progressbar",
    "aria-label": `Progress of ${job.name}`,
    "aria-valuemin": "0",
    "aria-valuemax": "100",
  });
  cells.fill = el("div", { class: "fill" });
  cells.bar.append(cells.fill);
  cells.pct = el("span", { class: "pct" });
  cells.msg = el("span", { class: "msg" });
  cells.state = el("span");
  cells.cancel = action("Cancel", "cancel", job, () => control("cancel", job.id));
  cells.retry = action("Retry", "retry", job, () => control("retry", job.id));
  cells.remove = action("Delete", "delete", job, () => control("delete", job.id));
  const open = el("button", {
    type: "button",
    class: "job-link",
    textContent: job.name,
    "aria-label": `Details of job ${job.name} (${job.id})`,
    onclick: () => showDetail(job.id),
  });
  cells.row = el(
    "tr",
    { "data-job": job.id },
    el(
      "td",
      {},
      open,
      el("span", { class: "job-id", textContent: job.id }),
      el("span", { class: "job-labels", textContent: labelText(job.labels) }),
    ),
    el("td", {}, cells.state),
    el("td", { class: "progress" }, cells.bar, el("span", {}, cells.pct, " ", cells.msg)),
    el("td", { textContent: new Date(job.created_at).toLocaleString() }),
    el("td", {}, el("div", { class: "actions" }, cells.cancel, cells.retry, cells.remove)),
  );
  fillState(cells, job);
  fillProgress(cells, job);
  return cells;
}

async function loadPage() {
  const tab = TABS[view.tab];
  let jobs;
  let next = null;
  try {
    if (view.search && view.search.by === "id") {
      const job = await api("GET", `api/jobs/${encodeURIComponent(view.search.text)}`).catch((error) => {
        if (error.status === 404) return null;
        throw error;
      });
      jobs = job ? [job] : [];
    } else {
      const query = new URLSearchParams();
      for (const state of tab.states) query.append("state", state);
      if (view.search && view.search.by === "name") query.set("name", view.search.text);
      if (view.search && view.search.by === "label") query.append("label", view.search.text);
      query.set("limit", String(PAGE));
      query.set("offset", String(view.offset));
      const page = await api("GET", `api/jobs?${query}`);
      jobs = page.jobs;
      next = page.next_offset;
    }
  } catch (error) {
    notice(`Could not load jobs: ${error.message}`);
    return;
  }
  const rows = $("rows");
  const fresh = new Map();
  for (const job of jobs) {
    const cells = view.rows.get(job.id) || makeRow(job);
    fillState(cells, job);
    fillProgress(cells, job);
    fresh.set(job.id, cells);
    known.set(job.id, job.state);
  }
  rows.replaceChildren(...[...fresh.values()].map((cells) => cells.row));
  view.rows = fresh;
  $("empty").hidden = jobs.length > 0;
  $("caption").textContent = view.search ? `${tab.title} matching ${view.search.by} “${view.search.text}”` : tab.title;
  $("prev").disabled = view.offset === 0;
  $("next").disabled = next === null;
  view.next = next;
  const first = jobs.length ? view.offset + 1 : 0;
  $("page-info").textContent = `Jobs ${first}–${view.offset + jobs.length}`;
}

async function loadCounts() {
  const query = new URLSearchParams();
  if (view.search && view.search.by === "name") query.set("name", view.search.text);
  if (view.search && view.search.by === "label") query.append("label", view.search.text);
  try {
    const stats = await api("GET", `api/stats?${query}`);
    for (const [name, tab] of Object.entries(TABS)) {
      $(`count-${name}`).textContent = String(tab.states.reduce((sum, state) => sum + stats.by_state[state], 0));
    }
  } catch (error) {
    notice(`Could not load counts: ${error.message}`);
  }
}

// Refreshes coalesce: at most one in flight and one queued, however many events arrive.
let refreshing = null;
let again = false;
function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      await Promise.all([loadPage(), loadCounts()]);
      if (view.detail) await loadDetail(view.detail);
      await new Promise((resolve) => setTimeout(resolve, 200));
    } while (again);
    refreshing = null;
  })();
  return refreshing;
}

// -- actions and detail ----------------------------------------------------------------------

async function control(verb, id) {
  notice("");
  try {
    if (verb === "delete") await api("DELETE", `api/jobs/${encodeURIComponent(id)}`);
    else await api("POST", `api/jobs/${encodeURIComponent(id)}/${verb}`);
  } catch (error) {
    notice(`Could not ${verb} job ${id}: ${error.message}`);
  }
  if (verb === "delete" && view.detail === id) closeDetail();
  refresh();
}

const DETAIL_FIELDS = [
  ["id", "Id"], ["name", "Name"], ["state", "State"], ["progress", "Progress"], ["message", "Message"],
  ["labels", "Labels"], ["priority", "Priority"], ["attempts", "Attempts"], ["created_at", "Created"],
  ["scheduled_at", "Scheduled"], ["started_at", "Started"], ["ended_at", "Ended"], ["duration", "Duration"],
  ["updated_at", "Updated"], ["error_type", "Error type"],
];

function shown(key, value) {
  if (value === null || value === undefined) return "—";
  if (key === "progress") return `${percent(value)} %`;
  if (key === "duration") return `${value.toFixed(3)} s`;
  if (key === "labels") return labelText(value) || "—";
  if (key.endsWith("_at")) return `${new Date(value).toLocaleString()} (${value})`;
  return String(value);
}

async function loadDetail(id) {
  let job;
  try {
    job = await api("GET", `api/jobs/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error.status === 404) closeDetail();
    else notice(`Could not load job ${id}: ${error.message}`);
    return;
  }
  if (view.detail !== id) return;
  $("detail-title").textContent = `Job ${job.name}`;
  $("detail-fields").replaceChildren(
    ...DETAIL_FIELDS.flatMap(([key, label]) => [
      el("dt", { textContent: label }),
      el("dd", { textContent: shown(key, job[key]), "data-field": key }),
    ]),
  );
  $("detail-params").textContent = JSON.stringify(job.params, null, 2);
  $("detail-result").textContent = JSON.stringify(job.result, null, 2);
  $("detail-error-box").hidden = job.error === null && job.traceback === null;
  $("detail-error").textContent = job.error_type ? `${job.error_type}: ${job.error}` : job.error || "";
  $("detail-traceback").textContent = job.traceback || "—";
}

async function showDetail(id) {
  view.detail = id;
  $("detail").hidden = false;
  await loadDetail(id);
  $("detail-title").focus();
}

function closeDetail() {
  view.detail = null;
  $("detail").hidden = true;
}

// -- tabs, search and paging -------------------------------------------------------------------

function selectTab(name, focus = false) {
  view.tab = name;
  view.offset = 0;
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected && focus) tab.focus();
  }
  $("jobs-panel").setAttribute("aria-labelledby", `tab-${name}`);
  refresh();
}

function setupControls() {
  const names = Object.keys(TABS);
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    tab.addEventListener("click", () => selectTab(tab.dataset.tab));
    tab.addEventListener("keydown", (event) => {
      const index = names.indexOf(view.tab);
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: names.length - 1 - index };
      if (!(event.key in moves)) return;
      event.preventDefault();
      selectTab(names[(index + moves[event.key] + names.length) % names.length], true);
    });
  }
  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("search-text").value.trim();
    view.search = text ? { by: $("search-by").value, text } : null;
    view.offset = 0;
    refresh();
  });
  $("search-clear").addEventListener("click", () => {
    $("search-text").value = "";
    view.search = null;
    view.offset = 0;
    refresh();
  });
  $("prev").addEventListener("click", () => {
    view.offset = Math.max(0, view.offset - PAGE);
    refresh();
  });
  $("next").addEventListener("click", () => {
    if (view.next !== null) view.offset = view.next;
    refresh();
  });
  $("detail-close").addEventListener("click", closeDetail);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && view.detail) closeDetail();
  });
}

// -- live ----------------------------------------------------------------------------------------

function setLive(state) {
  const live = $("live");
  live.dataset.state = state;
  live.textContent = state;
}

function onEvent(event) {
  const job = JSON.parse(event.data);
  const before = known.get(job.job_id);
  known.set(job.job_id, job.state);
  if (known.size > 10000) known.delete(known.keys().next().value);
  const cells = view.rows.get(job.job_id);
  if (before === job.state && cells) {
    fillProgress(cells, job); // a progress report of a job in view: no request needed
    if (view.detail === job.job_id) refresh();
    return;
  }
  if (cells) {
    fillState(cells, job);
    fillProgress(cells, job);
  }
  refresh(); // a state change: counts move, and the job may enter or leave this tab
}

let source = null;
function connect() {
  source = new EventSource("api/events");
  source.addEventListener("open", () => {
    setLive("live");
    notice("");
  });
  source.addEventListener("message", onEvent);
  source.addEventListener("snapshot", () => refresh());
  source.addEventListener("error", () => {
    setLive("reconnecting");
    if (source.readyState === EventSource.CLOSED) {
      // The server answered with an error instead of a stream: try again ourselves.
      setTimeout(connect, 2000);
    }
  });
}

setupControls();
refresh();
connect();
