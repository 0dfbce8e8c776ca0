// Overview: counts by status, per-workflow success rate and p50/p95 duration over a window,
// and a chart of completions and failures over time. Refreshes every 5 s.
import { h, s, api, clear, fmtNumber, fmtDuration, fmtTime, STATUSES, Poller, errorBox, enc } from "./core.js";

const WINDOWS = [["1h", 3600], ["6h", 21600], ["24h", 86400], ["7d", 604800], ["30d", 2592000]];
const COLORS = { RUNNING: "var(--running)", COMPLETED: "var(--completed)", FAILED: "var(--failed)",
  TERMINATED: "var(--terminated)", SUSPENDED: "var(--suspended)", PENDING: "var(--pending)" };

export function mountOverview(root, query) {
  let windowS = Number(query.get("window")) || 86400;
  const counters = h("div", { class: "counters", id: "counters" });
  const seg = h("div", { class: "seg", role: "group", "aria-label": "Window" });
  const chartBody = h("div", { class: "card-body chart", id: "chart" });
  const tableBody = h("div", { class: "card-body flush", id: "types" });
  const errorsBody = h("div", { class: "card-body flush", id: "top-errors" });
  const note = h("span", { class: "subtle" });
  for (const [label, secs] of WINDOWS) {
    const b = h("button", { text: label, class: secs === windowS ? "on" : "", "data-window": secs });
    b.addEventListener("click", () => {
      windowS = secs;
      seg.querySelectorAll("button").forEach((x) => x.classList.toggle("on", x === b));
      window.history.replaceState(null, "", `#/overview?window=${secs}`);
      poller.stop(); poller.start();
    });
    seg.appendChild(b);
  }
  root.append(
    h("div", { class: "page-head" }, h("h1", { text: "Overview" }), h("span", { class: "spacer" }), note, seg),
    counters,
    h("div", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: "Completions and failures" }),
      h("span", { class: "spacer" }), legend()), chartBody),
    h("div", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: "By workflow type" })), tableBody),
    h("div", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: "Top errors" }),
      h("span", { class: "subtle", text: "failed runs of the window, by workflow type and error type" })), errorsBody),
  );

  let last = null;
  const poller = new Poller(async () => {
    try {
      const data = await api(`/overview?window=${windowS}&buckets=${windowS <= 3600 ? 30 : 24}`);
      last = data;
      render(data);
    } catch (err) { clear(tableBody).appendChild(errorBox(err)); throw err; }
  }, 5000).start();

  const onResize = () => last && renderChart(chartBody, last.stats);
  window.addEventListener("resize", onResize);

  function render(data) {
    clear(counters);
    for (const st of STATUSES) {
      counters.appendChild(h("a", { class: "counter", href: `#/runs?status=${st}`, style: `--c:${COLORS[st]}`, "data-status": st },
        h("div", { class: "label", text: st.toLowerCase() }), h("div", { class: "value", text: fmtNumber(data.counts[st]) })));
    }
    const st = data.stats;
    note.textContent = `${fmtNumber(data.counts.TOTAL)} instances in total · window: runs created since ${fmtTime(st.start)}` +
      (st.sampled ? ` · durations from the newest ${fmtNumber(st.sample)} runs per status` : "");
    renderChart(chartBody, st);
    renderTypes(tableBody, st);
    renderErrors(errorsBody, st.top_errors || []);
  }
  return () => { poller.stop(); window.removeEventListener("resize", onResize); };
}

function legend() {
  return h("div", { class: "legend" },
    h("span", {}, h("i", { style: "background:#22a55a;border-color:#22a55a" }), "completed"),
    h("span", {}, h("i", { style: "background:#e5484d;border-color:#e5484d" }), "failed"));
}

function renderChart(el, st) {
  clear(el);
  const width = Math.max(320, el.clientWidth - 32), height = 190;
  const m = { l: 40, r: 10, t: 10, b: 26 };
  const series = st.series;
  const max = Math.max(1, ...series.map((b) => Math.max(b.completed, b.failed)));
  const step = niceStep(max);
  const top = Math.ceil(max / step) * step;
  const iw = width - m.l - m.r, ih = height - m.t - m.b;
  const bw = iw / series.length;
  const y = (v) => m.t + ih - (v / top) * ih;
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "completions and failures over time" });
  const grid = s("g", { class: "grid" }), axis = s("g", { class: "axis" });
  for (let v = 0; v <= top; v += step) {
    grid.appendChild(s("line", { x1: m.l, x2: width - m.r, y1: y(v), y2: y(v) }));
    axis.appendChild(s("text", { x: m.l - 6, y: y(v) + 4, "text-anchor": "end", text: fmtNumber(v) }));
  }
  svg.append(grid, axis);
  const every = Math.ceil(series.length / Math.max(2, Math.floor(iw / 90)));
  series.forEach((b, i) => {
    const x0 = m.l + i * bw, barW = Math.max(2, (bw - 6) / 2);
    const tip = `${fmtTime(b.t)} – ${fmtTime(b.t + st.bucket_ms)}: ${b.completed} completed, ${b.failed} failed`;
    svg.appendChild(s("rect", { x: x0 + 3, y: y(b.completed), width: barW, height: Math.max(0, y(0) - y(b.completed)), rx: 2, fill: "#22a55a" },
      s("title", { text: tip })));
    svg.appendChild(s("rect", { x: x0 + 3 + barW, y: y(b.failed), width: barW, height: Math.max(0, y(0) - y(b.failed)), rx: 2, fill: "#e5484d" },
      s("title", { text: tip })));
    if (i % every === 0) {
      axis.appendChild(s("text", { x: x0 + bw / 2, y: height - 8, "text-anchor": "middle", text: tickLabel(b.t, st.window_ms) }));
    }
  });
  svg.appendChild(s("line", { x1: m.l, x2: width - m.r, y1: y(0), y2: y(0), stroke: "#cfd4dc" }));
  el.appendChild(svg);
}

function niceStep(max) {
  const raw = max / 4, mag = 10 ** Math.floor(Math.log10(raw || 1));
  const n = raw / mag;
  return Math.max(1, (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag);
}

function tickLabel(t, windowMs) {
  // fmtTime: "YYYY-MM-DD HH:MM:SS ZONE" in the chosen zone; the axis shows the part that changes.
  const [day, clock] = fmtTime(t).split(" ");
  return windowMs > 2 * 86400000 ? day.slice(5) : clock.slice(0, 5);
}

function renderErrors(el, errors) {
  clear(el);
  const body = h("tbody");
  if (!errors.length) body.appendChild(h("tr", {}, h("td", { class: "empty", colspan: 5, text: "No failed runs in this window." })));
  for (const e of errors) {
    body.appendChild(h("tr", { "data-error": e.error_type, "data-type": e.name },
      h("td", {}, h("a", { href: `#/runs?status=FAILED&name=${enc(e.name)}`, text: e.name })),
      h("td", {}, h("a", { class: "mono", href: `#/runs?status=FAILED&name=${enc(e.name)}&error=${enc(e.error_type)}`, text: e.error_type })),
      h("td", { class: "msg", title: e.message, text: e.message }),
      h("td", { class: "num", text: fmtNumber(e.count) }),
      h("td", { class: "num subtle", text: fmtTime(e.latest) })));
  }
  el.appendChild(h("table", { class: "data top-errors" }, h("thead", {}, h("tr", {},
    ["Workflow", "Error type", "Latest message", "Runs", "Latest"].map((t, i) => h("th", { class: i >= 3 ? "num" : "", text: t })))), body));
}

function renderTypes(el, st) {
  clear(el);
  const head = h("tr", {}, ["Workflow", "Runs", "Running", "Completed", "Failed", "Terminated", "Success rate", "p50", "p95"]
    .map((t, i) => h("th", { class: i ? "num" : "", text: t })));
  const body = h("tbody");
  if (!st.types.length) {
    body.appendChild(h("tr", {}, h("td", { class: "empty", colspan: 9, text: "No runs were created in this window." })));
  }
  for (const t of st.types) {
    const rate = t.success_rate;
    body.appendChild(h("tr", { "data-type": t.name },
      h("td", {}, h("a", { href: `#/runs?name=${enc(t.name)}`, text: t.name })),
      h("td", { class: "num", text: fmtNumber(t.total) }),
      h("td", { class: "num", text: fmtNumber(t.counts.RUNNING + t.counts.PENDING + t.counts.SUSPENDED) }),
      h("td", { class: "num", text: fmtNumber(t.counts.COMPLETED) }),
      h("td", { class: "num", text: fmtNumber(t.counts.FAILED) }),
      h("td", { class: "num", text: fmtNumber(t.counts.TERMINATED) }),
      h("td", { class: "num" }, rate === null ? h("span", { class: "faint", text: "—" }) :
        h("div", { class: "rate" }, h("div", { class: "bar" }, h("i", { style: `width:${(rate * 100).toFixed(1)}%` })),
          h("span", { class: "success-rate", text: `${(rate * 100).toFixed(1)}%` }))),
      h("td", { class: "num", text: fmtDuration(t.p50_ms) }),
      h("td", { class: "num", text: fmtDuration(t.p95_ms) }),
    ));
  }
  el.appendChild(h("table", { class: "data" }, h("thead", {}, head), body));
}
