// Pools: every registered worker process (app, host, pid, kind, what it registers, the work it has
// claimed, its last heartbeat), live (polled every 2 s). A process whose heartbeat expired shows as
// dead until a sweeper reaps it and puts its work back. Pools of one app id that register different
// workflows, versions or activities get a warning box naming what each lacks (the listing's "mismatches").
import { h, api, clear, Poller, errorBox } from "./core.js";

const age = (ms) => `${Math.max(0, (Date.now() - ms) / 1000).toFixed(1)} s ago`;

export function mountPools(root) {
  const body = h("tbody", { id: "pools-body" });
  const errorSlot = h("div");
  const warningSlot = h("div", { id: "pools-mismatches" });
  const count = h("span");
  root.append(
    h("div", { class: "page-head" }, h("h1", { text: "Pools" }), h("span", { class: "live", text: "live" }),
      h("span", { class: "spacer" }),
      h("span", { class: "subtle", text: "Worker processes and their heartbeats (orchestrator pools)" })),
    errorSlot,
    warningSlot,
    h("div", { class: "card" },
      h("table", { class: "data", id: "pools-table" },
        h("thead", {}, h("tr", {}, ["App", "Host", "PID", "Kind", "Workflows", "Activities", "Work", "Heartbeat"]
          .map((t) => h("th", { text: t })))),
        body),
      h("div", { class: "pager" }, count)));

  const rowOf = (p) => h("tr", { "data-process": p.process_id, title: p.process_id },
    h("td", { text: p.app_id }),
    h("td", { class: "mono", text: p.host }),
    h("td", { class: "mono", text: String(p.pid) }),
    h("td", { text: p.kind }),
    h("td", { class: "mono", text: Object.entries(p.workflows).map(([n, v]) => (v.some((x) => x) ? `${n}@${v.filter((x) => x).join(",")}` : n)).join(", ") || "—" }),
    h("td", { class: "mono", text: p.activities.join(", ") || "—" }),
    h("td", { class: "mono", text: p.work.length ? p.work.slice(0, 5).join(", ") + (p.work.length > 5 ? ` … (${p.work.length})` : "") : "idle" }),
    h("td", {}, h("span", { class: p.alive ? "tag ok" : "tag err", text: p.alive ? age(p.heartbeat) : `dead (${age(p.heartbeat)})` })));

  async function poll() {
    try {
      const data = await api("/pools?include_dead=true");
      clear(errorSlot);
      clear(warningSlot);
      for (const m of data.mismatches) {
        warningSlot.appendChild(h("div", { class: "warning-box", "data-app": m.app_id },
          h("strong", { text: `App ${m.app_id}: pools register different names. ` }), m.message));
      }
      clear(body);
      if (!data.items.length) body.appendChild(h("tr", {}, h("td", { class: "empty", colspan: 8, text: "No worker process is registered. Start one with `orchestrator worker MODULE`." })));
      for (const p of data.items) body.appendChild(rowOf(p));
      count.textContent = `${data.items.filter((p) => p.alive).length} live process(es)`;
    } catch (err) { clear(errorSlot).appendChild(errorBox(err)); throw err; }
  }

  const poller = new Poller(poll, 2000).start();
  return () => poller.stop();
}
