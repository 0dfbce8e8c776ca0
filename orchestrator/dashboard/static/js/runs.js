// Runs list: filters (status, workflow type, error type, creation time range, id prefix), newest first,
// paged; a failed run shows its error. The filters live in the URL (#/runs?status=FAILED&name=...), so a
// filtered list can be shared. Batch actions (terminate, purge, rerun) apply to every run the filters
// match, after a confirmation that shows how many.
import { h, api, clear, badge, runLink, fmtTime, fmtAgo, fmtDuration, fmtNumber, STATUSES, TERMINAL, Poller, errorBox,
  confirmDialog, toast } from "./core.js";

const RANGES = [["", "Any time"], ["900", "Last 15 minutes"], ["3600", "Last hour"], ["86400", "Last 24 hours"],
  ["604800", "Last 7 days"], ["custom", "Custom range"]];
const KEYS = ["status", "name", "error", "id", "range", "since", "until", "offset", "limit"];

export function mountRuns(root, query) {
  const state = Object.fromEntries(KEYS.map((k) => [k, query.get(k) || ""]));
  state.offset = Number(state.offset) || 0;
  state.limit = Number(state.limit) || 50;

  const status = h("select", { id: "f-status", "aria-label": "Status" }, h("option", { value: "", text: "All statuses" }),
    STATUSES.map((st) => h("option", { value: st, text: st.toLowerCase() })));
  const names = h("datalist", { id: "workflow-names" });
  const name = h("input", { id: "f-name", type: "search", list: "workflow-names", placeholder: "any workflow", "aria-label": "Workflow type" });
  const errorType = h("input", { id: "f-error", type: "search", placeholder: "any error", "aria-label": "Error type", spellcheck: "false" });
  const idPrefix = h("input", { id: "f-id", type: "search", placeholder: "id prefix", "aria-label": "Instance id prefix", spellcheck: "false" });
  const range = h("select", { id: "f-range", "aria-label": "Created" }, RANGES.map(([v, t]) => h("option", { value: v, text: t })));
  const since = h("input", { id: "f-since", type: "datetime-local", step: "1", "aria-label": "Created after" });
  const until = h("input", { id: "f-until", type: "datetime-local", step: "1", "aria-label": "Created before" });
  const custom = h("div", { class: "field custom-range" }, h("label", { text: "From – to" }), h("div", { class: "btn-group" }, since, until));
  const pageSize = h("select", { id: "f-limit", "aria-label": "Page size" }, [25, 50, 100, 200].map((n) => h("option", { value: n, text: `${n} / page` })));
  const reset = h("button", { class: "btn", text: "Reset" });

  status.value = state.status; name.value = state.name; idPrefix.value = state.id; range.value = state.range;
  errorType.value = state.error;
  pageSize.value = String(state.limit);
  if (state.since) since.value = toLocalInput(Number(state.since));
  if (state.until) until.value = toLocalInput(Number(state.until));

  const table = h("tbody", { id: "runs-body" });
  const summary = h("span", { id: "runs-summary" });
  const prev = h("button", { class: "btn small", text: "‹ Newer", id: "prev" });
  const next = h("button", { class: "btn small", text: "Older ›", id: "next" });
  const errorSlot = h("div");

  root.append(
    h("div", { class: "page-head" }, h("h1", { text: "Runs" }), h("span", { class: "spacer" }),
      h("span", { class: "subtle", text: "Newest first" }), startButton()),
    errorSlot,
    h("div", { class: "card" },
      h("div", { class: "filters" },
        h("div", { class: "field" }, h("label", { for: "f-status", text: "Status" }), status),
        h("div", { class: "field" }, h("label", { for: "f-name", text: "Workflow" }), name, names),
        h("div", { class: "field" }, h("label", { for: "f-error", text: "Error type" }), errorType),
        h("div", { class: "field" }, h("label", { for: "f-id", text: "Instance id" }), idPrefix),
        h("div", { class: "field" }, h("label", { for: "f-range", text: "Created" }), range),
        custom,
        h("div", { class: "field" }, h("label", { text: " " }), reset)),
      h("table", { class: "data" },
        h("thead", {}, h("tr", {}, ["Instance", "Workflow", "Status", "Error", "Created", "Duration", "Last update"].map((t) => h("th", { text: t })))),
        table),
      h("div", { class: "pager" }, summary, h("span", { class: "spacer" }), pageSize, prev, next),
      h("div", { class: "batch", id: "batch" }, h("span", { class: "subtle", text: "Every run these filters match:" }),
        batchButton("terminate", "Terminate all", "danger"), batchButton("purge", "Purge all", "danger"),
        batchButton("rerun", "Rerun all", ""))),
  );

  function startButton() {
    const b = h("button", { class: "btn primary", text: "Start a run", id: "start-run" });
    b.addEventListener("click", () => confirmDialog({
      title: "Start a run", message: "Start a new instance of a registered workflow.", confirmText: "Start",
      fields: [{ name: "name", label: "Workflow", value: state.name || "" },
        { name: "input", label: "Input (JSON; empty for none)", type: "textarea" },
        { name: "instance_id", label: "Instance id (empty: a random one)" },
        { name: "reuse_id_policy", label: "If that id exists: error, or replace (a finished run)", value: "error" },
        { name: "app_id", label: "App (empty: the app serving the workflow)" }],
      onConfirm: async (v) => {
        const body = { name: v.name.trim(), instance_id: v.instance_id.trim() || null, app_id: v.app_id.trim() || null,
          reuse_id_policy: v.reuse_id_policy.trim() || null };
        if (!body.name) throw new Error("name the workflow to start");
        if (v.input.trim()) {
          try { body.input = JSON.parse(v.input); } catch (e) { throw new Error(`input is not valid JSON: ${e.message}`); }
        }
        const answer = await api("/start", { method: "POST", body });
        toast(`started ${answer.result}`);
        window.location.hash = `#/run/${encodeURIComponent(answer.result)}`;
      },
    }));
    return b;
  }

  function batchButton(op, label, cls) {
    const b = h("button", { class: `btn small ${cls}`, text: label, id: `batch-${op}` });
    b.addEventListener("click", () => confirmBatch(op));
    return b;
  }

  function batchFilters() {
    const f = {};
    if (state.status) f.status = state.status;
    if (state.name) f.name = state.name;
    if (state.error) f.error_type = state.error;
    if (state.id) f.id_prefix = state.id;
    const q = new URLSearchParams(apiQuery());
    if (q.get("since")) f.since = Number(q.get("since"));
    if (q.get("until")) f.until = Number(q.get("until"));
    return f;
  }

  async function confirmBatch(op) {
    const filters = batchFilters();
    let preview;
    try {
      preview = await api(`/runs/batch/${op}`, { method: "POST", body: { ...filters, dry_run: true } });
    } catch (err) { toast(err.message, true); return; }
    const n = preview.result.matched;
    const what = { terminate: "Terminate", purge: "Purge", rerun: "Rerun" }[op];
    const note = { terminate: "Runs already finished are skipped; running children are terminated too.",
      purge: "Only finished runs are purged; their history and data are deleted. This cannot be undone.",
      rerun: "Each finished run is started again from its first step as a new run." }[op];
    confirmDialog({
      title: `${what} ${fmtNumber(n)} run${n === 1 ? "" : "s"}?`, danger: op !== "rerun", confirmText: `${what} ${fmtNumber(n)}`,
      message: `${fmtNumber(n)} run${n === 1 ? "" : "s"} match the filters${preview.result.capped ? ` (the first ${fmtNumber(n)})` : ""}. ${note}`,
      onConfirm: async () => {
        const done = await api(`/runs/batch/${op}`, { method: "POST", body: filters });
        const r = done.result;
        toast(`${what}: ${fmtNumber(r.done.length)} done${Object.keys(r.skipped).length ? `, ${fmtNumber(Object.keys(r.skipped).length)} skipped` : ""}` +
          `${Object.keys(r.failed).length ? `, ${Object.keys(r.failed).length} failed` : ""}`, Object.keys(r.failed).length > 0);
        poller.stop(); poller.start();
      },
    });
  }

  api("/workflows").then((d) => d.names.forEach((n) => names.appendChild(h("option", { value: n })))).catch(() => {});

  const showCustom = () => { custom.style.display = range.value === "custom" ? "" : "none"; };
  showCustom();

  function readFilters() {
    state.status = status.value;
    state.name = name.value.trim();
    state.error = errorType.value.trim();
    state.id = idPrefix.value.trim();
    state.range = range.value;
    state.limit = Number(pageSize.value);
    if (state.range === "custom") {
      state.since = since.value ? String(new Date(since.value).getTime()) : "";
      state.until = until.value ? String(new Date(until.value).getTime()) : "";
    } else {
      state.since = ""; state.until = "";
    }
  }

  function syncUrl() {
    const params = new URLSearchParams();
    for (const k of KEYS) {
      const v = state[k];
      if (v !== "" && v !== 0 && !(k === "limit" && v === 50)) params.set(k, v);
    }
    const qs = params.toString();
    window.history.replaceState(null, "", `#/runs${qs ? `?${qs}` : ""}`);
  }

  function apiQuery() {
    const p = new URLSearchParams();
    if (state.status) p.set("status", state.status);
    if (state.name) p.set("name", state.name);
    if (state.error) p.set("error", state.error);
    if (state.id) p.set("id", state.id);
    if (state.range && state.range !== "custom") p.set("since", String(Date.now() - Number(state.range) * 1000));
    if (state.range === "custom") {
      if (state.since) p.set("since", state.since);
      if (state.until) p.set("until", state.until);
    }
    p.set("offset", state.offset);
    p.set("limit", state.limit);
    return p.toString();
  }

  let seq = 0;
  async function load() {
    const mine = ++seq;
    let data;
    try {
      data = await api(`/runs?${apiQuery()}`);
    } catch (err) {
      clear(errorSlot).appendChild(errorBox(err));
      throw err;
    }
    if (mine !== seq) return; // a newer request is on its way
    clear(errorSlot);
    render(data);
  }

  function render(data) {
    clear(table);
    if (!data.items.length) {
      table.appendChild(h("tr", {}, h("td", { class: "empty", colspan: 7, text: "No runs match these filters." })));
    }
    const now = Date.now();
    for (const r of data.items) {
      const end = r.completed || (TERMINAL.has(r.status) ? r.updated : now);
      table.appendChild(h("tr", { "data-id": r.instance_id },
        h("td", { class: "id" }, runLink(r.instance_id)),
        h("td", { text: r.name }),
        h("td", {}, badge(r.status)),
        r.error ? h("td", { class: "error", title: `${r.error.error_type}: ${r.error.message}` },
          h("span", { class: "etype", text: shortType(r.error.error_type) }), r.error.message) : h("td", { class: "faint", text: "" }),
        h("td", { title: fmtAgo(r.created), text: fmtTime(r.created) }),
        h("td", { text: fmtDuration(end - r.created) }),
        h("td", { class: "subtle", text: fmtAgo(r.updated) })));
    }
    const from = data.items.length ? data.offset + 1 : 0;
    const to = data.offset + data.items.length;
    const total = data.total === null ? (data.has_more ? "many" : fmtNumber(to)) : fmtNumber(data.total);
    summary.textContent = `${fmtNumber(from)}–${fmtNumber(to)} of ${total}` +
      (data.partial ? " (stopped scanning: narrow the filters or the time range)" : "");
    prev.disabled = data.offset === 0;
    next.disabled = !data.has_more;
  }

  const apply = () => { readFilters(); state.offset = 0; syncUrl(); poller.stop(); poller.start(); };
  let debounce = null;
  const applySoon = () => { clearTimeout(debounce); debounce = setTimeout(apply, 300); };
  status.addEventListener("change", apply);
  range.addEventListener("change", () => { showCustom(); apply(); });
  since.addEventListener("change", apply);
  until.addEventListener("change", apply);
  pageSize.addEventListener("change", apply);
  name.addEventListener("input", applySoon);
  idPrefix.addEventListener("input", applySoon);
  errorType.addEventListener("input", applySoon);
  reset.addEventListener("click", () => {
    status.value = ""; name.value = ""; idPrefix.value = ""; errorType.value = ""; range.value = ""; since.value = ""; until.value = "";
    showCustom(); apply();
  });
  prev.addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); syncUrl(); poller.stop(); poller.start(); });
  next.addEventListener("click", () => { state.offset += state.limit; syncUrl(); poller.stop(); poller.start(); });

  const poller = new Poller(load, 5000).start();
  return () => { poller.stop(); clearTimeout(debounce); };
}

function shortType(t) { return t.split(".").pop(); }

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}
