// The timeline (Gantt): one row per step (activity attempt, timer, child workflow, external event)
// with its start, end and duration on a shared time axis. Rows are virtualized: only the rows in
// view are drawn, so a run with thousands of steps scrolls smoothly. A row names its call (#seq and a
// summary of its input); an activity's bar is light while it waited in the queue, solid while it ran.
import { h, s, clear, fmtDuration, fmtClock, fmtTime } from "./core.js";

/** One line for the card head: how many steps, over how long. */
export function timelineSummary(model) {
  return `${model.nodes.length.toLocaleString("en-US")} step${model.nodes.length === 1 ? "" : "s"} over ${fmtDuration(Math.max(model.span_end, model.start) - model.start)}, from ${fmtTime(model.start)}`;
}

const ROW = 26, LABEL = 300, RIGHT = 90, AXIS_H = 28, OVERSCAN = 12;
const COLOR = { completed: "#22a55a", failed: "#e5484d", running: "#3b82f6", waiting: "#f59e0b", fired: "#f59e0b",
  received: "#0891b2", cancelled: "#b8bec9", abandoned: "#b8bec9" };
const KIND_COLOR = { activity: "#4f46e5", child: "#7c3aed", timer: "#d97706", retry_timer: "#d97706", event: "#0e7490" };
const KIND_LABEL = { activity: "activity", child: "child workflow", timer: "timer", retry_timer: "retry backoff", event: "event" };

export function renderTimeline(container, model, { onNode } = {}) {
  clear(container);
  const rows = model.nodes;
  const t0 = model.start;
  const t1 = Math.max(model.span_end, t0 + 1);
  const width = Math.max(600, container.clientWidth || 900);
  const plotW = width - LABEL - RIGHT;
  const xOf = (t) => LABEL + ((Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0)) * plotW;

  const axis = s("svg", { class: "gantt-axis", width, height: AXIS_H });
  const ticks = niceTicks(t1 - t0, plotW);
  axis.appendChild(s("text", { x: 12, y: 18, "font-size": 11, fill: "#6b7385", "font-weight": 600, text: "STEP" }));
  for (const dt of ticks) {
    const x = xOf(t0 + dt);
    axis.appendChild(s("line", { x1: x, x2: x, y1: AXIS_H - 6, y2: AXIS_H, stroke: "#b8bec9" }));
    axis.appendChild(s("text", { x, y: 17, "text-anchor": "middle", "font-size": 10.5, fill: "#6b7385", text: `+${fmtDuration(dt)}` }));
  }
  const scroll = h("div", { class: "gantt-scroll", id: "gantt-scroll" });
  const spacer = h("div", { style: `height:${rows.length * ROW}px` });
  scroll.appendChild(spacer);
  container.appendChild(h("div", { class: "gantt", id: "gantt", "data-rows": rows.length }, axis, scroll));
  if (!rows.length) {
    scroll.appendChild(h("div", { class: "loading", text: "No steps yet: the run has not scheduled anything." }));
    return;
  }

  let drawn = null;
  const draw = () => {
    const from = Math.max(0, Math.floor(scroll.scrollTop / ROW) - OVERSCAN);
    const to = Math.min(rows.length, Math.ceil((scroll.scrollTop + (scroll.clientHeight || 420)) / ROW) + OVERSCAN);
    if (drawn && drawn.from === from && drawn.to === to) return;
    const svg = s("svg", { width, height: (to - from) * ROW, style: `top:${from * ROW}px` }, patterns());
    for (const dt of ticks) {
      const x = xOf(t0 + dt);
      svg.appendChild(s("line", { x1: x, x2: x, y1: 0, y2: (to - from) * ROW, stroke: "#f0f2f5" }));
    }
    for (const m of model.markers || []) {
      const x = xOf(m.ts);
      svg.appendChild(s("line", { x1: x, x2: x, y1: 0, y2: (to - from) * ROW, stroke: "#c2410c", "stroke-dasharray": "3 3" },
        s("title", { text: `${m.kind} at ${fmtClock(m.ts)}` })));
    }
    const closed = model.end !== null ? model.end : model.now;
    for (let i = from; i < to; i++) svg.appendChild(row(rows[i], (i - from) * ROW, xOf, model.now, closed, width, onNode));
    if (drawn) drawn.svg.remove();
    scroll.appendChild(svg);
    drawn = { from, to, svg };
  };
  let pending = false;
  scroll.addEventListener("scroll", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  });
  draw();
}

function row(n, y, xOf, now, closed, width, onNode) {
  const stopped = n.status === "cancelled" || n.status === "abandoned";
  const end = n.end !== null ? n.end : stopped ? closed : now;
  const x1 = xOf(n.start), x2 = Math.max(xOf(end), x1 + 2);
  const color = COLOR[n.status] || "#9ca3af";
  const g = s("g", { class: `gantt-row${n.lost ? " lost" : ""}`, "data-id": n.id, "data-status": n.status, cursor: "pointer" });
  const dur = n.end !== null ? fmtDuration(n.duration) : stopped ? n.status : n.status === "waiting" || n.status === "queued" ? n.status : "running";
  const queued = n.started ? `\nqueued ${fmtDuration(n.started - n.start)}, ran ${n.end !== null ? fmtDuration(n.end - n.started) : "…"}` : "";
  g.appendChild(s("title", { text: `${n.name}${n.seq ? ` (call #${n.seq})` : ""}${n.attempt > 1 ? ` attempt ${n.attempt}` : ""}: ${n.status}\n` +
    `scheduled ${fmtClock(n.start)}${n.end !== null ? `\nend ${fmtClock(n.end)}` : ""}\nduration ${dur}${queued}${n.error ? `\n${n.error}` : ""}` }));
  g.appendChild(s("rect", { class: "row-bg", x: 0, y, width, height: ROW, fill: "transparent" }));
  g.appendChild(s("rect", { x: 12, y: y + 9, width: 8, height: 8, rx: n.kind === "event" ? 4 : 2, fill: KIND_COLOR[n.kind] || "#9ca3af" },
    s("title", { text: KIND_LABEL[n.kind] || n.kind })));
  const label = `${n.seq ? `#${n.seq} ` : ""}${n.name}${n.attempt > 1 ? ` (try ${n.attempt})` : ""}${n.summary ? ` ${n.summary}` : ""}`;
  g.appendChild(s("text", { x: 28, y: y + 17, "font-size": 12, fill: n.lost ? "#9aa1b1" : "#1d2433", "font-weight": 550,
    class: "row-label", text: label.length > 40 ? `${label.slice(0, 39)}…` : label }));
  if (n.kind === "event") {
    const cx = x1, cy = y + ROW / 2;
    g.appendChild(s("polygon", { points: `${cx},${cy - 6} ${cx + 6},${cy} ${cx},${cy + 6} ${cx - 6},${cy}`, fill: color }));
  } else {
    const running = n.end === null && !stopped;
    const queuedFill = n.status === "queued";
    const xs = n.started ? Math.min(Math.max(xOf(n.started), x1), x2) : x1;
    if (xs > x1 + 0.5) {  // the time it waited in the queue, before it started running
      g.appendChild(s("rect", { class: "bar queued-part", x: x1, y: y + 9, width: xs - x1, height: ROW - 18, rx: 2, fill: color }));
    }
    g.appendChild(s("rect", { class: "bar", x: xs, y: y + 7, width: Math.max(2, x2 - xs), height: ROW - 14, rx: 3,
      fill: queuedFill ? "url(#gray-stripes)" : running ? "url(#stripes)" : stopped ? "url(#gray-stripes)" : color,
      stroke: running || stopped ? color : "none", opacity: n.lost ? 0.55 : 1 }));
  }
  const textX = Math.min(x2 + 6, width - 84);
  g.appendChild(s("text", { x: textX, y: y + 17, "font-size": 11, fill: "#6b7385", text: n.kind === "event" ? "received" : dur }));
  g.appendChild(s("line", { x1: 0, x2: width, y1: y + ROW - 0.5, y2: y + ROW - 0.5, stroke: "#f3f4f6" }));
  if (onNode) g.addEventListener("click", () => onNode(n));
  return g;
}

function patterns() {
  return s("defs", {}, s("pattern", { id: "stripes", width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
    s("rect", { width: 8, height: 8, fill: "#dbe7ff" }), s("rect", { width: 4, height: 8, fill: "#93b4f8" })),
    s("pattern", { id: "gray-stripes", width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
      s("rect", { width: 8, height: 8, fill: "#f1f2f4" }), s("rect", { width: 4, height: 8, fill: "#d6d9df" })));
}

function niceTicks(span, px) {
  const target = Math.max(2, Math.floor(px / 110));
  const raw = span / target;
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5,
    72e5, 144e5, 216e5, 432e5, 864e5, 1728e5, 6048e5];
  const step = steps.find((x) => x >= raw) || raw;
  const out = [];
  for (let t = 0; t <= span + 1e-9; t += step) out.push(t);
  return out;
}
