// The execution diagram: the run's stages in reading order, wrapped into rows that fit the card (so the
// end state is always in view), each stage's parallel branches stacked, retries drawn as chains
// (attempt -> backoff -> attempt), recorded when_any races with their winner and losers.
// The model comes from /api/runs/<id>/execution (see orchestrator/dashboard/execution.py).
import { h, s, clear, fmtDuration, fmtClock, fmtRelative, fmtNumber } from "./core.js";

const W = 168, H = 48, RW = 116, RH = 30, GAP_CHAIN = 22, GAP_ROW = 20, GAP_COL = 64, PAD = 24;
const LABEL_H = 22, ROW_GAP = 46, TERM_W = 32;
const MAX_BRANCHES = 8;     // a wider fan-out shows its first branches and a summary box
const STAGES_PER_PAGE = 60; // longer runs page through their stages (page 1 is the start)
const STROKE = { completed: "#16a34a", failed: "#dc2626", running: "#2563eb", queued: "#9ca3af", waiting: "#d97706",
  fired: "#d97706", received: "#0e7490", cancelled: "#9ca3af", abandoned: "#9ca3af", lost: "#9ca3af" };
const FILL = { completed: "#f3fbf5", failed: "#fef4f4", running: "#f2f6ff", queued: "#fafafa", waiting: "#fffaf0",
  fired: "#fffaf0", received: "#effafc", cancelled: "#f7f7f8", abandoned: "#f7f7f8", lost: "#f7f7f8" };
const KIND = { activity: "activity", child: "child workflow", timer: "timer", retry_timer: "retry backoff", event: "external event" };
const GLYPH = { completed: "✓", failed: "✕", running: "●", queued: "◌", waiting: "◷", fired: "◷", received: "⚡",
  cancelled: "⊘", abandoned: "⊘", lost: "⊘" };
const PROGRESS_ORDER = ["queued", "running", "completed", "failed", "waiting", "fired", "received", "lost", "abandoned", "cancelled"];

export function renderDiagram(container, model, { page = null, onNode, onPage, waiting = null } = {}) {
  clear(container);
  const nodes = Object.fromEntries(model.nodes.map((n) => [n.id, n]));
  const stages = model.stages;
  const pages = Math.max(1, Math.ceil(stages.length / STAGES_PER_PAGE));
  const current = page === null ? pages - 1 : Math.min(page, pages - 1);
  const first = current * STAGES_PER_PAGE;
  const visible = stages.slice(first, first + STAGES_PER_PAGE);
  const showStart = current === 0;
  const showEnd = current === pages - 1;
  const maxW = Math.max(640, (container.clientWidth || 1240) - 4);

  // -- layout: items (start, stages, end) flow left to right and wrap into rows ----------------------
  const items = [];
  if (showStart) items.push({ kind: "start", width: TERM_W, height: H });
  else items.push({ kind: "earlier", width: 110, height: H });
  for (const [i, stage] of visible.entries()) {
    const calls = stage.branches.length > MAX_BRANCHES ? stage.branches.slice(0, MAX_BRANCHES - 1) : stage.branches;
    const hidden = stage.branches.slice(calls.length);
    const rows = calls.map((call) => (model.calls[call] || [call]).map((id) => nodes[id]).filter(Boolean));
    const count = rows.length + (hidden.length ? 1 : 0);
    const label = stageLabel(stage, first + i);
    const width = Math.max(W, ...rows.map(chainWidth), label.length * 6.3);
    items.push({ kind: "stage", stage, index: first + i, rows, hidden, label, width, height: count * H + (count - 1) * GAP_ROW });
  }
  if (showEnd) items.push({ kind: "end", width: TERM_W + 60, height: H });
  const lines = [];
  let line = null;
  for (const item of items) {
    if (!line || (line.width + item.width > maxW - 2 * PAD && line.items.length)) {
      line = { items: [], width: 0, height: H };
      lines.push(line);
    }
    item.x = PAD + line.width;
    line.width += item.width + GAP_COL;
    line.height = Math.max(line.height, item.height);
    line.items.push(item);
  }
  let top = PAD;
  for (const l of lines) {
    l.top = top;
    l.mid = top + LABEL_H + l.height / 2;
    top += LABEL_H + l.height + ROW_GAP;
  }
  const height = top - ROW_GAP + PAD;
  const width = Math.min(maxW, Math.max(...lines.map((l) => PAD + l.width - GAP_COL + PAD), 400));

  const anchors = {}; // call id -> {x, y, line} where its outcome leaves (right side of its last node)
  const entries = {}; // call id -> {x, y, line} where it is entered (left side of its first node)
  const svg = s("svg", { class: "diagram", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "execution diagram" });
  const edgeLayer = s("g"), nodeLayer = s("g");
  svg.append(defs(), edgeLayer, nodeLayer);

  let endItem = null;
  for (const [li, l] of lines.entries()) {
    for (const item of l.items) {
      const mid = l.mid;
      if (item.kind === "start") {
        nodeLayer.appendChild(terminal(item.x + 16, mid, "start", "#4f46e5", `started ${fmtClock(model.start)}`));
        anchors.start = { x: item.x + TERM_W, y: mid, line: li };
      } else if (item.kind === "earlier") {
        nodeLayer.appendChild(s("text", { x: item.x, y: mid + 4, fill: "#9aa1b1", "font-size": 12, text: `… ${fmtNumber(first)} earlier stages` }));
      } else if (item.kind === "end") {
        endItem = { x: item.x + 16, y: mid, line: li };
      } else {
        placeStage(item, l, li);
      }
    }
  }

  function placeStage(col, l, li) {
    const x = col.x;
    const colTop = l.mid - col.height / 2;
    col.line = li;
    nodeLayer.appendChild(s("text", { x, y: l.top + 12, fill: "#9aa1b1", "font-size": 11, "font-weight": 600,
      class: "stage-label", "data-stage": col.index + 1, text: col.label }));
    col.rows.forEach((chain, r) => {
      const y = colTop + r * (H + GAP_ROW) + H / 2;
      let cx = x;
      chain.forEach((node, k) => {
        const small = node.kind === "retry_timer";
        const w = small ? RW : W;
        if (k > 0) edgeLayer.appendChild(s("path", { class: "edge retry", d: `M${cx - GAP_CHAIN},${y} L${cx - 4},${y}`, "marker-end": "url(#arrow-retry)" }));
        nodeLayer.appendChild(box(node, cx, y, w, small ? RH : H, onNode, model));
        cx += w + GAP_CHAIN;
      });
      const callId = chain[0].call;
      entries[callId] = { x, y, line: li };
      anchors[callId] = { x: cx - GAP_CHAIN, y, line: li };
    });
    if (col.hidden.length) {
      const y = colTop + col.rows.length * (H + GAP_ROW) + H / 2;
      nodeLayer.appendChild(moreBox(col.hidden.map((c) => outcome(model, nodes, c)), x, y));
      for (const c of col.hidden) { anchors[c] = { x: x + W, y, line: li }; entries[c] = { x, y, line: li }; }
    }
  }

  // -- edges: triggers -> (junction) -> branches -------------------------------------------------
  const won = new Set(model.nodes.filter((n) => n.won).map((n) => n.call));
  const drawInto = (triggers, targets, colX, colMid, li) => {
    const sources = uniquePoints(triggers.map((t) => anchors[t] ? { ...anchors[t], win: won.has(t) } : null).filter(Boolean));
    if (!sources.length) sources.push({ x: colX - GAP_COL + 14, y: colMid, line: li, stub: true });
    const points = uniquePoints(targets);
    if (sources.length === 1 && points.length === 1) {
      edgeLayer.appendChild(link(sources[0], points[0], sources[0].win ? "edge win" : "edge", true, lines));
      return;
    }
    const j = { x: colX - 22, y: colMid, line: li };
    for (const src of sources) edgeLayer.appendChild(link(src, j, src.win ? "edge win" : "edge", false, lines));
    for (const p of points) edgeLayer.appendChild(link(j, p, "edge", true, lines));
    edgeLayer.appendChild(s("circle", { cx: j.x, cy: j.y, r: 4, fill: "#fff", stroke: "#8b93a3", "stroke-width": 1.5 }));
  };
  for (const col of items.filter((it) => it.kind === "stage")) {
    const targets = [...col.rows.map((chain) => entries[chain[0].call]), ...(col.hidden.length ? [entries[col.hidden[0]]] : [])];
    const ys = targets.map((p) => p.y);
    drawInto(col.stage.triggers, targets, col.x, (Math.min(...ys) + Math.max(...ys)) / 2, col.line);
  }
  if (endItem) {
    const fin = model.finish;
    const status = fin ? fin.status : model.status;
    const color = { COMPLETED: "#16a34a", FAILED: "#dc2626", TERMINATED: "#4b5563", CONTINUED_AS_NEW: "#4f46e5" }[status] || "#2563eb";
    const label = fin ? status.toLowerCase().replace(/_/g, " ") : openLabel(status, waiting);
    nodeLayer.appendChild(terminal(endItem.x, endItem.y, label, color, fin ? `${label} ${fmtClock(fin.ts)}` : `in progress: ${label}`, !fin));
    const target = [{ x: endItem.x - 16, y: endItem.y, line: endItem.line }];
    if (fin) drawInto(fin.triggers, target, endItem.x - 16, endItem.y, endItem.line);
    else if (model.pending_triggers.length) drawInto(model.pending_triggers, target, endItem.x - 16, endItem.y, endItem.line);
  }

  const wrap = h("div", { class: "diagram-wrap", id: "diagram", "data-exact": model.exact ? "1" : "0" }, svg);
  container.appendChild(wrap);
  if (pages > 1) container.appendChild(pager(current, pages, stages.length, onPage));
  return { page: current, pages };
}

function stageLabel(stage, index) {
  const parts = [`STAGE ${index + 1}`];
  if (stage.branches.length > 1) parts.push(`${fmtNumber(stage.branches.length)} in parallel`);
  if (stage.race) parts.push("when_any");
  const progress = stage.progress || {};
  const live = PROGRESS_ORDER.filter((k) => progress[k]);
  if (stage.branches.length > 1 && live.length > 1) parts.push(live.map((k) => `${fmtNumber(progress[k])} ${k}`).join(" · "));
  return parts.join(" · ");
}

function openLabel(status, waiting) {
  if (status === "SUSPENDED" || status === "PENDING") return status.toLowerCase();
  if (waiting && waiting.events.length) {
    const names = waiting.events.slice(0, 2).join(", ") + (waiting.events.length > 2 ? ", …" : "");
    return `waiting for ${names}`;
  }
  return "running";
}

function chainWidth(chain) {
  return chain.reduce((acc, n) => acc + (n.kind === "retry_timer" ? RW : W), 0) + (chain.length - 1) * GAP_CHAIN;
}

function outcome(model, nodes, call) {
  const chain = model.calls[call] || [call];
  return nodes[chain[chain.length - 1]];
}

function uniquePoints(points) {
  const seen = new Map();
  for (const p of points) {
    const key = `${Math.round(p.x)}:${Math.round(p.y)}`;
    if (!seen.has(key) || p.win) seen.set(key, p);
  }
  return [...seen.values()];
}

/** An edge from a to b: a curve on one row; from one row to a later one, down the gap between rows. */
function link(a, b, cls, arrow, lines) {
  const tip = b.x - (arrow ? 4 : 0);
  let d;
  if (a.line === b.line || a.line === undefined || b.line === undefined || b.x > a.x + 20 && Math.abs(b.y - a.y) < 40) {
    const dx = Math.max(20, (b.x - a.x) / 2);
    d = `M${a.x},${a.y} C${a.x + dx},${a.y} ${b.x - dx},${b.y} ${tip},${b.y}`;
  } else {
    const gy = lines[b.line].top - ROW_GAP / 2 + 6;
    d = `M${a.x},${a.y} C${a.x + 26},${a.y} ${a.x + 26},${gy} ${a.x},${gy} L${Math.max(8, b.x - 30)},${gy} ` +
      `C${b.x - 52},${gy} ${b.x - 40},${b.y} ${tip},${b.y}`;
  }
  return s("path", { class: cls, d, "marker-end": arrow ? (cls.includes("win") ? "url(#arrow-win)" : "url(#arrow)") : undefined });
}

function defs() {
  const mk = (id, color) => s("marker", { id, viewBox: "0 0 10 10", refX: 8, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    s("path", { d: "M0,0 L10,5 L0,10 z", fill: color }));
  return s("defs", {}, mk("arrow", "#aab1bf"), mk("arrow-win", "#16a34a"), mk("arrow-retry", "#b45309"));
}

function terminal(cx, cy, label, color, tip, pulsing = false) {
  return s("g", { class: `terminal${pulsing ? " pending" : ""}`, "data-terminal": label },
    s("title", { text: tip }),
    s("circle", { cx, cy, r: 16, fill: pulsing ? "#fff" : color, stroke: color, "stroke-width": 2,
      "stroke-dasharray": pulsing ? "4 3" : undefined, class: pulsing ? "running-stroke" : undefined }),
    s("text", { x: cx, y: cy + 34, "text-anchor": "middle", "font-size": 11.5, fill: "#4b5563", "font-weight": 600, text: label }));
}

function lostText(model) { return model.exact ? "lost the race: its result was not used" : "not awaited: the workflow moved on"; }

function tooltip(n, model) {
  const lines = [`${KIND[n.kind] || n.kind}: ${n.name}${n.seq ? ` (call #${n.seq})` : ""}`];
  if (n.attempt > 1) lines.push(`attempt ${n.attempt}`);
  lines.push(`status: ${n.status}${n.delivered ? " (delivered, waiting for the step that takes it)" : ""}` +
    `${n.won ? " (won the race)" : ""}${n.lost ? ` (${lostText(model)})` : ""}`);
  lines.push(`scheduled: ${fmtClock(n.start)}`);
  if (n.started) lines.push(`started: ${fmtClock(n.started)} (queued ${fmtDuration(n.started - n.start)})`);
  if (n.end !== null) lines.push(`end: ${fmtClock(n.end)}  (${fmtDuration(n.duration)})`);
  if (n.fire_at) lines.push(`fires at: ${fmtClock(n.fire_at)} (${fmtRelative(n.fire_at)})`);
  if (n.child) lines.push(`child instance: ${n.child}`);
  if (n.error) lines.push(`error: ${n.error}`);
  lines.push(n.child ? "click to open the child run" : "click to inspect its history events");
  return lines.join("\n");
}

function box(n, x, cy, w, hgt, onNode, model) {
  const status = n.status;
  const stroke = STROKE[status] || "#9ca3af";
  const y = cy - hgt / 2;
  const cls = `node kind-${n.kind} st-${status}${n.won ? " won" : ""}${n.lost ? " lost" : ""}`;
  const g = s("g", { class: cls, "data-id": n.id, "data-kind": n.kind, "data-status": status, "data-name": n.name, tabindex: 0 });
  g.appendChild(s("title", { text: tooltip(n, model) }));
  g.appendChild(s("rect", { class: `box${status === "running" ? " running-stroke" : ""}`, x, y, width: w, height: hgt, rx: 7,
    fill: FILL[status] || "#fff", stroke, "stroke-width": n.won ? 2.4 : 1.4,
    "stroke-dasharray": n.lost || status === "running" ? "5 3" : status === "queued" ? "2 3" : undefined }));
  if (n.kind === "child") g.appendChild(s("rect", { x: x + 3, y: y + 3, width: w - 6, height: hgt - 6, rx: 5, fill: "none", stroke, "stroke-width": 0.8, opacity: 0.6 }));
  if (n.kind === "retry_timer") {
    const wait = n.fire_at ? fmtDuration(n.fire_at - n.start) : "";
    g.appendChild(s("text", { x: x + w / 2, y: cy + 4, "text-anchor": "middle", "font-size": 11.5, fill: "#92400e", "font-weight": 600,
      text: `◷ retry in ${wait}` }));
  } else {
    g.appendChild(s("text", { x: x + 10, y: y + 19, "font-size": 12.5, "font-weight": 600, fill: "#1d2433", text: fit(n.name, w - 34) }));
    g.appendChild(s("text", { x: x + 10, y: y + 36, "font-size": 11, fill: "#6b7385", text: fit(subline(n), w - 16) }));
    g.appendChild(s("text", { x: x + w - 10, y: y + 19, "text-anchor": "end", "font-size": 12, fill: stroke, "font-weight": 700, text: GLYPH[status] || "" }));
  }
  if (n.won) g.appendChild(flag(x + w - 34, y - 9, "won", "#16a34a"));
  if (n.lost) g.appendChild(model.exact ? flag(x + w - 66, y - 9, "lost race", "#9ca3af", 60) : flag(x + w - 78, y - 9, "not awaited", "#9ca3af", 72));
  if (onNode) {
    g.addEventListener("click", () => onNode(n));
    g.addEventListener("keydown", (e) => { if (e.key === "Enter") onNode(n); });
  }
  return g;
}

function subline(n) {
  const dur = n.end !== null ? fmtDuration(n.duration) : null;
  if (n.kind === "event") return "event received";
  if (n.kind === "timer") {
    if (n.status === "fired") return `timer · waited ${dur}`;
    if (n.status === "waiting") return `timer · fires ${fmtRelative(n.fire_at)}`;
    return `timer · ${n.status}`;
  }
  const head = n.attempt > 1 ? `attempt ${n.attempt}` : n.seq ? `#${n.seq}` : KIND[n.kind];
  let tail = dur || n.status;
  if (n.status === "running") tail = "running…";
  if (n.status === "queued") tail = "queued";
  if (n.delivered) tail = "delivered";
  if (n.status === "lost") tail = "lost race";
  return `${head} · ${tail}`;
}

function flag(x, y, text, color, w = 30) {
  return s("g", { class: "flag", "data-flag": text }, s("rect", { x, y, width: w, height: 16, rx: 8, fill: color }),
    s("text", { x: x + w / 2, y: y + 11.5, "text-anchor": "middle", "font-size": 10, "font-weight": 700, fill: "#fff", text }));
}

function moreBox(outcomes, x, cy) {
  const by = {};
  for (const n of outcomes) if (n) by[n.status] = (by[n.status] || 0) + 1;
  const parts = PROGRESS_ORDER.filter((k) => by[k]).map((k) => `${by[k]} ${k}`).join(", ");
  return s("g", { class: "node more", "data-more": outcomes.length },
    s("title", { text: `${outcomes.length} more branches in this stage: ${parts}` }),
    s("rect", { x, y: cy - H / 2, width: W, height: H, rx: 7, fill: "#fafbfc", stroke: "#b8bfcc", "stroke-dasharray": "3 3" }),
    s("text", { x: x + 10, y: cy - 4, "font-size": 12.5, "font-weight": 600, fill: "#374151", text: `+ ${outcomes.length} more branches` }),
    s("text", { x: x + 10, y: cy + 13, "font-size": 11, fill: "#6b7385", text: fit(parts, W - 16) }));
}

function fit(text, px) {
  const max = Math.max(4, Math.floor(px / 6.9));
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function pager(current, pages, total, onPage) {
  const per = STAGES_PER_PAGE;
  const first = h("button", { class: "btn small", text: "« Start", disabled: current === 0 });
  const prev = h("button", { class: "btn small", text: "‹ Earlier stages", disabled: current === 0 });
  const next = h("button", { class: "btn small", text: "Later stages ›", disabled: current >= pages - 1 });
  const last = h("button", { class: "btn small", text: "End »", disabled: current >= pages - 1 });
  first.addEventListener("click", () => onPage && onPage(0));
  prev.addEventListener("click", () => onPage && onPage(current - 1));
  next.addEventListener("click", () => onPage && onPage(current + 1));
  last.addEventListener("click", () => onPage && onPage(pages - 1));
  const n = (x) => x.toLocaleString("en-US");
  return h("div", { class: "pager" }, h("span", { text: `Stages ${n(current * per + 1)}–${n(Math.min(total, (current + 1) * per))} of ${n(total)} · page ${current + 1} of ${pages}` }),
    h("span", { class: "spacer" }), first, prev, next, last);
}

export function diagramLegend() {
  const item = (label, color, dashed) => h("span", {}, h("i", { style: `border-color:${color};background:#fff${dashed ? ";border-style:dashed" : ""}` }), label);
  return h("div", { class: "legend" }, item("completed", STROKE.completed), item("failed", STROKE.failed),
    item("running", STROKE.running, true), item("queued", STROKE.queued, true), item("timer / retry", STROKE.waiting),
    item("event", STROKE.received), item("lost race", "#9ca3af", true));
}
