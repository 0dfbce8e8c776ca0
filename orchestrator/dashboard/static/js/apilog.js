// API log: the workflow API calls (start, raise event, terminate, suspend, resume, purge) made by
// clients, the CLI, the HTTP API and this dashboard, newest first, live (polled every 2 s).
import { h, api, clear, enc, fmtTime, runLink, Poller, errorBox } from "./core.js";

const OPS = ["start", "raise_event", "terminate", "suspend", "resume", "purge"];

export function mountApiLog(root) {
  const body = h("tbody", { id: "apilog-body" });
  const filter = h("input", { type: "search", placeholder: "filter: instance, caller, op, result…", "aria-label": "Filter", id: "apilog-filter" });
  const op = h("select", { "aria-label": "Operation", id: "apilog-op" }, h("option", { value: "", text: "All operations" }),
    OPS.map((o) => h("option", { value: o, text: o })));
  const older = h("button", { class: "btn small", text: "Load older", id: "apilog-older" });
  const count = h("span");
  const errorSlot = h("div");
  const live = h("span", { class: "live", text: "live" });
  root.append(
    h("div", { class: "page-head" }, h("h1", { text: "API log" }), live, h("span", { class: "spacer" }),
      h("span", { class: "subtle", text: "Workflow API calls from clients, the CLI, the HTTP API and the dashboard" })),
    errorSlot,
    h("div", { class: "card" },
      h("div", { class: "filters" }, h("div", { class: "field" }, h("label", { text: "Filter" }), filter),
        h("div", { class: "field" }, h("label", { text: "Operation" }), op)),
      h("table", { class: "data" },
        h("thead", {}, h("tr", {}, ["Time", "Caller", "Operation", "Instance", "Detail", "Result"].map((t) => h("th", { text: t })))),
        body),
      h("div", { class: "pager" }, count, h("span", { class: "spacer" }), older)));

  const entries = []; // newest first
  let newest = null;

  const matches = (e) => {
    const text = filter.value.trim().toLowerCase();
    if (op.value && e.op !== op.value) return false;
    if (!text) return true;
    return [e.instance, e.caller, e.op, e.result, e.detail].some((v) => (v || "").toLowerCase().includes(text));
  };

  const rowOf = (e, fresh) => h("tr", { class: fresh ? "fresh" : "", "data-op": e.op, "data-instance": e.instance },
    h("td", { class: "mono time", text: fmtTime(Number(e.ts), true) }),
    h("td", {}, h("span", { class: "tag caller", text: e.caller })),
    h("td", { class: "mono", text: e.op }),
    h("td", { class: "id" }, e.instance ? runLink(e.instance) : h("span", { class: "faint", text: "—" })),
    h("td", { class: "subtle", text: e.detail || "" }),
    h("td", {}, e.result === "ok" ? h("span", { class: "tag ok", text: "ok" }) : h("span", { class: "tag err", text: e.result, title: e.result })));

  function render(freshIds = new Set()) {
    clear(body);
    const shown = entries.filter(matches);
    if (!shown.length) body.appendChild(h("tr", {}, h("td", { class: "empty", colspan: 6, text: "No API calls recorded yet." })));
    for (const e of shown) body.appendChild(rowOf(e, freshIds.has(e.id)));
    count.textContent = `${shown.length.toLocaleString()} of ${entries.length.toLocaleString()} loaded entries`;
  }

  async function poll() {
    try {
      const data = await api(`/apilog?limit=200${newest ? `&after=${enc(newest)}` : ""}`);
      clear(errorSlot);
      if (!data.entries.length && newest !== null) return;
      const fresh = new Set(newest ? data.entries.map((e) => e.id) : []);
      entries.unshift(...data.entries);
      if (entries.length) newest = entries[0].id;
      render(fresh);
    } catch (err) { clear(errorSlot).appendChild(errorBox(err)); throw err; }
  }

  older.addEventListener("click", async () => {
    const oldest = entries.length ? entries[entries.length - 1].id : null;
    const data = await api(`/apilog?limit=200${oldest ? `&before=${enc(oldest)}` : ""}`);
    entries.push(...data.entries);
    older.disabled = data.entries.length < 200;
    render();
  });
  filter.addEventListener("input", () => render());
  op.addEventListener("change", () => render());

  const poller = new Poller(poll, 2000).start();
  return () => poller.stop();
}
