// The history panel: every event of the run, paged (100 per page, so 10,000 events stay usable),
// each expandable to its fields and payloads (clipped, with "Show all" fetching the full event).
import { h, api, clear, enc, fmtClock, fmtDuration, fmtRelative, payloadView, runLink } from "./core.js";

const KINDS = ["StepStarted", "ExecutionStarted", "TaskScheduled", "TaskCompleted", "TaskFailed", "TimerCreated",
  "TimerFired", "EventRaised", "ChildScheduled", "ChildCompleted", "ChildFailed", "ExecutionCompleted",
  "ContinuedAsNew", "ExecutionTerminated", "ExecutionSuspended", "ExecutionResumed"];
const KIND_CLASS = { TaskCompleted: "k-ok", ChildCompleted: "k-ok", TaskFailed: "k-err", ChildFailed: "k-err",
  TaskScheduled: "k-sched", ChildScheduled: "k-sched", TimerCreated: "k-timer", TimerFired: "k-timer", EventRaised: "k-event",
  ExecutionTerminated: "k-ctrl", ExecutionSuspended: "k-ctrl", ExecutionResumed: "k-ctrl", StepStarted: "k-step" };

export function historyPanel(instanceId) {
  const state = { offset: 0, limit: 100, kind: "", total: 0, expanded: new Set(), start: null, target: null };
  const body = h("tbody", { id: "history-body" });
  const summary = h("span");
  const kind = h("select", { "aria-label": "Event kind", id: "history-kind" }, h("option", { value: "", text: "All events" }),
    KINDS.map((k) => h("option", { value: k, text: k })));
  const prev = h("button", { class: "btn small", text: "‹ Previous" });
  const next = h("button", { class: "btn small", text: "Next ›" });
  const first = h("button", { class: "btn small", text: "« First" });
  const last = h("button", { class: "btn small", text: "Last »" });
  const el = h("div", {},
    h("table", { class: "data history" },
      h("thead", {}, h("tr", {}, h("th", {}), h("th", { class: "num", text: "#" }), h("th", { class: "num", text: "Step" }),
        h("th", { text: "Time" }), h("th", { class: "num", text: "+ Elapsed" }), h("th", { text: "Event" }), h("th", { text: "Details" }))),
      body),
    h("div", { class: "pager" }, summary, h("span", { class: "spacer" }), kind, first, prev, next, last));

  kind.addEventListener("change", () => { state.kind = kind.value; state.offset = 0; load(); });
  prev.addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); load(); });
  next.addEventListener("click", () => { state.offset += state.limit; load(); });
  first.addEventListener("click", () => { state.offset = 0; load(); });
  last.addEventListener("click", () => { state.offset = Math.max(0, Math.floor((state.total - 1) / state.limit) * state.limit); load(); });

  async function load() {
    const q = `offset=${state.offset}&limit=${state.limit}${state.kind ? `&kind=${enc(state.kind)}` : ""}`;
    const data = await api(`/runs/${enc(instanceId)}/history?${q}`);
    state.total = data.total;
    render(data);
    return data;
  }

  function render(data) {
    clear(body);
    if (!data.events.length) body.appendChild(h("tr", {}, h("td", { class: "empty", colspan: 7, text: "No history events yet." })));
    for (const ev of data.events) {
      const row = h("tr", { class: `ev-row${state.target === ev.index ? " target" : ""}`, "data-index": ev.index },
        h("td", { class: "caret", text: state.expanded.has(ev.index) ? "▾" : "▸" }),
        h("td", { class: "num subtle", text: ev.index }),
        h("td", { class: "num subtle", text: ev.step }),
        h("td", { class: "mono", text: fmtClock(ev.ts) }),
        h("td", { class: "num subtle", text: state.start !== null ? `+${fmtDuration(Math.max(0, ev.ts - state.start))}` : "" }),
        h("td", {}, h("span", { class: `ev-kind ${KIND_CLASS[ev.kind] || ""}`, text: ev.kind })),
        h("td", { class: "subtle", text: describe(ev) }));
      const detail = h("tr", { class: "ev-detail", "data-detail": ev.index }, h("td", { colspan: 7 }, eventDetail(instanceId, ev)));
      detail.hidden = !state.expanded.has(ev.index);
      row.addEventListener("click", () => {
        const open = detail.hidden;
        detail.hidden = !open;
        row.firstChild.textContent = open ? "▾" : "▸";
        if (open) state.expanded.add(ev.index); else state.expanded.delete(ev.index);
      });
      body.append(row, detail);
    }
    const from = data.total ? data.offset + 1 : 0;
    summary.textContent = `Events ${from.toLocaleString()}–${(data.offset + data.events.length).toLocaleString()} of ${data.total.toLocaleString()}`;
    prev.disabled = first.disabled = data.offset === 0;
    next.disabled = last.disabled = data.offset + data.events.length >= data.total;
  }

  /** Show event `index`: open its page, expand it and scroll to it. */
  async function reveal(index) {
    state.kind = ""; kind.value = "";
    state.offset = Math.floor(index / state.limit) * state.limit;
    state.expanded.add(index);
    state.target = index;
    await load();
    const row = body.querySelector(`tr[data-index="${index}"]`);
    if (row) row.scrollIntoView({ behavior: "smooth", block: "center" });
  }

  /** Elapsed times are shown relative to this moment: the run's creation, or its first event if earlier
   * (a rerun keeps the original's events), so an elapsed time is never negative. */
  const setStart = (ms, firstEvent = null) => { state.start = firstEvent !== null ? Math.min(ms, firstEvent) : ms; };

  return { el, load, reveal, setStart };
}

function describe(ev) {
  const f = ev.fields;
  const parts = [];
  if (f.name !== undefined) parts.push(f.name);
  else if (ev.call) parts.push(ev.call);  // a result names the call it answers
  if (f.seq !== undefined) parts.push(`call #${f.seq}`);
  if (f.attempt !== undefined && f.attempt > 1) parts.push(`attempt ${f.attempt}`);
  if (f.purpose) parts.push(`purpose ${f.purpose}`);
  if (f.fire_at !== undefined) parts.push(`fires ${fmtClock(f.fire_at)} (${fmtRelative(f.fire_at)})`);
  if (f.awaited !== undefined) parts.push(f.awaited.length ? `received ${f.awaited.map(refText).join(", ")}` : "received nothing");
  if (f.lost !== undefined) parts.push(`let go ${f.lost.map(refText).join(", ")}`);
  if (f.instance_id !== undefined) parts.push(`child ${f.instance_id}`);
  if (f.status !== undefined) parts.push(f.status);
  if (f.error_type) parts.push(f.error_type);
  return parts.join(" · ");
}

function refText(ref) { return ref < 0 ? `event #${-ref - 1}` : `call #${ref}`; }

function eventDetail(instanceId, ev) {
  const kv = h("div", { class: "kv" });
  for (const [k, v] of Object.entries(ev.fields)) {
    if (v === null || v === undefined) continue;
    const value = k === "instance_id" ? runLink(String(v)) : h("span", { text: k.endsWith("_at") || k === "fire_at" ? fmtClock(v) : JSON.stringify(v) });
    kv.append(h("span", { class: "k", text: k }), h("span", { class: "v" }, value));
  }
  kv.append(h("span", { class: "k", text: "timestamp" }), h("span", { class: "v", text: `${fmtClock(ev.ts)} (${new Date(ev.ts).toISOString()})` }));
  const out = h("div", {}, kv);
  for (const [name, clip] of Object.entries(ev.payloads)) {
    const stack = name === "stack_trace";
    const full = async () => {
      const event = await api(`/runs/${enc(instanceId)}/history/${ev.index}`);
      return stack ? event.failure.stack_trace : event[name];
    };
    out.appendChild(h("div", { class: "ev-payload" }, h("h4", { text: stack ? "stack trace" : name }),
      payloadView(clip, full, stack ? "stack" : "")));
  }
  if (!Object.keys(ev.payloads).length && !Object.keys(ev.fields).length) out.appendChild(h("div", { class: "none", text: "no data" }));
  return out;
}
