// Schedules: every durable schedule with its next and last runs, live (polled every 3 s); pause,
// resume and trigger through the dashboard API (which calls the client).
import { h, api, clear, enc, fmtTime, runLink, Poller, errorBox, toast, badge } from "./core.js";

const ms = (iso) => (iso ? Date.parse(iso) : null);

export function mountSchedules(root) {
  const body = h("tbody", { id: "schedules-body" });
  const errorSlot = h("div");
  const count = h("span");
  const flowBody = h("tbody", { id: "flow-body" });
  root.append(
    h("div", { class: "page-head" }, h("h1", { text: "Schedules" }), h("span", { class: "live", text: "live" }),
      h("span", { class: "spacer" }),
      h("span", { class: "subtle", text: "Durable schedules: each nominal time starts one run (orchestrator schedule …)" })),
    errorSlot,
    h("div", { class: "card" },
      h("table", { class: "data", id: "schedules-table" },
        h("thead", {}, h("tr", {}, ["Schedule", "Workflow", "When", "Overlap", "State", "Next runs", "Last run",
          "Fired / skipped / missed", ""].map((t) => h("th", { text: t })))),
        body),
      h("div", { class: "pager" }, count)),
    h("div", { class: "page-head" }, h("h1", { text: "Flow control" }), h("span", { class: "spacer" }),
      h("span", { class: "subtle", text: "Limited workflow types (w:) and activities (a:): running and waiting, by concurrency key" })),
    h("div", { class: "card" },
      h("table", { class: "data", id: "flow-table" },
        h("thead", {}, h("tr", {}, ["Scope", "Running", "Waiting", "Limit", "Per key", "By key (running / waiting)"]
          .map((t) => h("th", { text: t })))),
        flowBody)));

  async function act(id, what) {
    try {
      const out = await api(`/schedules/${enc(id)}/${what}`, { method: "POST", body: {} });
      if (what === "trigger") toast(out.result ? `started ${out.result}` : "skipped: the previous run is still going");
      else toast(`${what}d ${id}`);
      await poll();
    } catch (err) { toast(err.message, true); }
  }

  const rowOf = (d) => {
    const when = d.cron !== null ? `cron ${d.cron}` : `every ${d.every_seconds}s`;
    const last = d.last_run;
    return h("tr", { "data-schedule": d.schedule_id },
      h("td", { class: "mono", text: d.schedule_id, title: d.note || "" }),
      h("td", { text: d.workflow }),
      h("td", { class: "mono", text: `${when} (${d.timezone})` }),
      h("td", { text: d.overlap }),
      h("td", {}, h("span", { class: d.paused ? "tag err" : "tag ok", text: d.paused ? "paused" : "active" })),
      h("td", { class: "mono time" }, d.next_runs.length
        ? d.next_runs.slice(0, 3).map((t) => h("div", { text: fmtTime(ms(t)) }))
        : h("span", { class: "faint", text: d.paused ? "paused" : "ended" })),
      h("td", {}, last ? h("div", {}, runLink(last.instance_id), " ", badge(last.status),
        h("div", { class: "subtle", text: `nominal ${fmtTime(ms(last.nominal_time))}` }))
        : h("span", { class: "faint", text: "—" })),
      h("td", { class: "mono", text: `${d.fired} / ${d.skipped} / ${d.missed}` }),
      h("td", {},
        d.paused ? h("button", { class: "btn small", text: "Resume", onclick: () => act(d.schedule_id, "resume") })
          : h("button", { class: "btn small", text: "Pause", onclick: () => act(d.schedule_id, "pause") }),
        " ", h("button", { class: "btn small", text: "Trigger", onclick: () => act(d.schedule_id, "trigger") })));
  };

  async function poll() {
    try {
      const data = await api("/schedules");
      clear(errorSlot);
      clear(body);
      if (!data.items.length) body.appendChild(h("tr", {}, h("td", { class: "empty", colspan: 9, text: "No schedules. Create one with `orchestrator schedule create`." })));
      for (const d of data.items) body.appendChild(rowOf(d));
      count.textContent = `${data.items.length} schedule(s)`;
      const flow = await api("/flow");
      clear(flowBody);
      if (!flow.scopes.length) flowBody.appendChild(h("tr", {}, h("td", { class: "empty", colspan: 6, text: "No flow-control limits have been used yet." })));
      for (const f of flow.scopes) {
        const keys = Object.entries(f.by_key).map(([k, v]) => `${k || "(all)"}: ${v.running} / ${v.waiting}`).join(" · ");
        flowBody.appendChild(h("tr", { "data-scope": f.scope },
          h("td", { class: "mono", text: f.scope }), h("td", { text: String(f.running) }), h("td", { text: String(f.waiting) }),
          h("td", { text: f.limit === null ? "—" : String(f.limit) }), h("td", { text: f.key_limit === null ? "—" : String(f.key_limit) }),
          h("td", { class: "subtle", text: keys || "—" })));
      }
    } catch (err) { clear(errorSlot).appendChild(errorBox(err)); throw err; }
  }

  const poller = new Poller(poll, 3000).start();
  return () => poller.stop();
}
