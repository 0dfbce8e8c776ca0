// The run page: status, data, failure, parent/children, the execution diagram, the timeline and
// the history; actions (suspend, resume, raise event, terminate, purge), each confirmed. While the
// run is in progress the page polls its version every 1.5 s and redraws when it changed.
import { h, api, apiUrl, clear, enc, badge, runLink, fmtTime, fmtDuration, fmtAgo, fmtNumber, fmtRelative, payloadView,
  toast, confirmDialog, Poller, errorBox, TERMINAL } from "./core.js";
import { renderDiagram, diagramLegend } from "./diagram.js";
import { renderTimeline, timelineSummary } from "./timeline.js";
import { historyPanel } from "./history.js";

export function mountRun(root, instanceId) {
  const path = `/runs/${enc(instanceId)}`;
  const head = h("div", { class: "page-head" });
  const failure = h("div");
  const facts = h("div", { class: "card-body" });
  const data = h("div", { class: "grid two" });
  const related = h("div");
  const inbox = h("div");
  const counts = h("span", { class: "subtle", id: "exec-counts" });
  const progressEl = h("div", { class: "progress", id: "progress" });
  const diagram = h("div", { class: "card-body flush" });
  const timeline = h("div", { class: "card-body flush", id: "timeline" });
  const timelineNote = h("span", { class: "subtle" });
  const history = historyPanel(instanceId);
  const download = h("a", { class: "btn small", href: apiUrl(`${path}/history.json`), download: "", text: "Download JSON", id: "download-history" });
  const errorSlot = h("div");
  let diagramPage = null;
  let model = null;
  let run = null;

  root.append(
    head, errorSlot, failure,
    h("div", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: "Details" })), facts),
    data, related, inbox,
    h("div", { class: "card", id: "execution" },
      h("div", { class: "card-head" }, h("h2", { text: "Execution" }), counts, h("span", { class: "spacer" }), diagramLegend()),
      progressEl, diagram),
    h("div", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: "Timeline" }), timelineNote,
      h("span", { class: "spacer" }), h("span", { class: "faint", text: "bars run from scheduled to finished" })), timeline),
    h("div", { class: "card", id: "history" },
      h("div", { class: "card-head" }, h("h2", { text: "History" }), h("span", { class: "spacer" }), download),
      h("div", { class: "card-body flush" }, history.el)),
  );

  const onNode = (n) => {
    if (n.kind === "child" && n.child) { window.location.hash = `#/run/${enc(n.child)}`; return; }
    history.reveal(n.done_index !== null && n.status === "failed" ? n.done_index : n.sched_index)
      .then(() => document.getElementById("history").scrollIntoView({ behavior: "smooth" })).catch((e) => toast(e.message, true));
  };

  let lastVersion = null;
  async function loadAll() {
    const [fresh, exec] = await Promise.all([api(path), api(`${path}/execution`)]);
    run = fresh;
    model = exec;
    history.setStart(run.created, model.start);
    clear(errorSlot);
    renderHead(run);
    renderFailure(run, model);
    renderFacts(run);
    renderData(run);
    renderRelated(run);
    renderInbox(run);
    renderExecution();
    await history.load();
    lastVersion = `${run.version}|${run.status}|${run.updated}`;
    return run;
  }

  function renderExecution() {
    const c = model.counts;
    counts.textContent = [plural(c.activities, "activity", "activities"), plural(c.timers, "timer"), plural(c.children, "child", "children"),
      plural(c.events, "event"), c.retries ? plural(c.retries, "retry", "retries") : null,
      c.max_parallel > 1 ? `up to ${fmtNumber(c.max_parallel)} in parallel` : null].filter(Boolean).join(" · ");
    renderProgress(model.progress || {});
    const shown = renderDiagram(diagram, model, { page: diagramPage, onNode, waiting: run && run.waiting_for,
      onPage: (p) => { diagramPage = p; renderExecution(); } });
    if (diagramPage !== null && shown.page === shown.pages - 1) diagramPage = null; // back on the last page: follow it live
    timelineNote.textContent = timelineSummary(model);
    renderTimeline(timeline, model, { onNode });
  }

  function renderProgress(p) {
    clear(progressEl);
    const open = (p.queued || 0) + (p.running || 0);
    if (!open) return;
    const total = Object.values(p).reduce((a, b) => a + b, 0);
    const order = ["completed", "failed", "running", "queued"];
    const bar = h("div", { class: "progress-bar", title: "calls by state" },
      order.filter((k) => p[k]).map((k) => h("i", { class: `p-${k}`, style: `width:${(100 * p[k] / total).toFixed(2)}%` })));
    progressEl.append(bar, h("span", { class: "progress-text", id: "progress-text",
      text: order.filter((k) => p[k] !== undefined).map((k) => `${fmtNumber(p[k])} ${k}`).join(" · ") + ` of ${fmtNumber(total)} calls` }));
  }

  function renderHead(run) {
    clear(head);
    const live = !TERMINAL.has(run.status) ? h("span", { class: "live", id: "live", text: "live" }) : null;
    head.append(
      h("div", { class: "run-title" },
        h("div", { class: "crumbs" }, h("a", { href: "#/runs", text: "Runs" }), " / ", h("a", { href: `#/runs?name=${enc(run.name)}`, text: run.name })),
        h("h1", { id: "run-id", text: run.instance_id }),
        h("div", { class: "btn-group" }, badge(run.status, true), live)),
      h("span", { class: "spacer" }),
      actions(run));
  }

  function actions(run) {
    const st = run.status;
    const terminal = TERMINAL.has(st);
    const act = (label, id, enabled, cls, dialog) => {
      const b = h("button", { class: `btn ${cls}`, text: label, id, disabled: !enabled });
      b.addEventListener("click", () => confirmDialog(dialog));
      return b;
    };
    const post = (what, body) => async () => {
      await api(`${path}/${what}`, { method: "POST", body });
      toast(`${what} sent to ${instanceId}`);
      setTimeout(refresh, 300);
    };
    return h("div", { class: "btn-group", id: "actions" },
      act("Suspend", "act-suspend", st === "RUNNING" || st === "PENDING", "", {
        title: "Suspend this run?", message: "It stops processing new steps until resumed; running activities finish and their results wait.",
        confirmText: "Suspend", onConfirm: post("suspend") }),
      act("Resume", "act-resume", st === "SUSPENDED", "", {
        title: "Resume this run?", message: "It continues from where it was suspended.", confirmText: "Resume", onConfirm: post("resume") }),
      act("Raise event", "act-raise", !terminal, "", {
        title: "Raise an external event", message: "Deliver a named event to this run; data is JSON (empty for none).",
        confirmText: "Raise event", fields: [{ name: "name", label: "Event name", placeholder: "approval" },
          { name: "data", label: "Data (JSON)", type: "textarea", placeholder: '{"approved": true}' }],
        onConfirm: async (v) => {
          if (!v.name.trim()) throw new Error("the event needs a name");
          let value = null;
          if (v.data.trim()) {
            try { value = JSON.parse(v.data); } catch (e) { throw new Error(`data is not valid JSON: ${e.message}`); }
          }
          await post("raise", { name: v.name.trim(), data: value })();
        } }),
      act("Terminate", "act-terminate", !terminal, "danger", {
        title: "Terminate this run?", message: "The run stops for good and is marked terminated; its running children are terminated too. This cannot be undone.",
        confirmText: "Terminate", danger: true, onConfirm: post("terminate", { recursive: true }) }),
      act("Rerun", "act-rerun", terminal, "", {
        title: "Rerun this run?", message: "Start a new run of the same workflow version that reuses the results of the calls " +
          "before the step you name and runs that step and everything after it again. Step 1 runs it all again.",
        confirmText: "Rerun", fields: [{ name: "from_step", label: "From step (a call, counted from 1)", value: "1" },
          { name: "input", label: "New input (JSON; empty keeps the original)", type: "textarea", placeholder: "" },
          { name: "new_instance_id", label: "New instance id (empty: a random one)", placeholder: "" }],
        onConfirm: async (v) => {
          const step = Number(v.from_step);
          if (!Number.isInteger(step) || step < 1) throw new Error("the step must be a whole number from 1");
          const body = { from_step: step };
          if (v.input.trim()) {
            try { body.input = JSON.parse(v.input); } catch (e) { throw new Error(`input is not valid JSON: ${e.message}`); }
          }
          if (v.new_instance_id.trim()) body.new_instance_id = v.new_instance_id.trim();
          const answer = await api(`${path}/rerun`, { method: "POST", body });
          toast(`rerun started as ${answer.result}`);
          window.location.hash = `#/run/${enc(answer.result)}`;
        } }),
      act("Purge", "act-purge", terminal, "danger", {
        title: "Purge this run?", message: "Its history and data (and its children's) are deleted from Redis. This cannot be undone.",
        confirmText: "Purge", danger: true, onConfirm: async () => {
          await api(`${path}/purge`, { method: "POST" });
          toast(`purged ${instanceId}`);
          window.location.hash = "#/runs";
        } }));
  }

  function renderFailure(run, model) {
    clear(failure);
    const f = run.failure;
    if (!f) return;
    const call = failedCall(model, f);
    const head = call
      ? `${call.kind === "child" ? "child workflow" : "activity"} ${call.name} (call #${call.seq}) failed` +
        `${call.attempts > 1 ? ` after ${call.attempts} attempts` : ""}`
      : "the workflow failed";
    const stack = f.stack_trace ? foldStack(f.stack_trace.text) : null;
    failure.appendChild(h("div", { class: "failure-box", id: "failure" },
      h("h3", { text: "Failure" }),
      h("div", { class: "f-call", id: "failure-call", text: head }),
      h("div", {}, h("span", { class: "etype", text: f.error_type }), ": ", h("span", { text: f.message })),
      stack && stack.user ? h("div", { class: "f-frame", id: "failure-frame" }, h("span", { class: "subtle", text: "raised in " }),
        h("code", { text: stack.user.where }), stack.user.code ? h("pre", { class: "json stack", text: stack.user.code }) : null) : null,
      f.stack_trace ? h("details", { class: "f-stack", style: "margin-top:10px" },
        h("summary", { text: stack && stack.folded ? `Stack trace (${stack.folded} engine frame${stack.folded > 1 ? "s" : ""} folded)` : "Stack trace" }),
        payloadView(stack ? { ...f.stack_trace, text: stack.text } : f.stack_trace,
          async () => (await api(`${path}/payload/failure`)).value.stack_trace, "stack")) : null));
  }

  function renderFacts(run) {
    clear(facts);
    const end = run.completed || (TERMINAL.has(run.status) ? run.updated : Date.now());
    const fact = (k, v) => h("div", { class: "fact" }, h("div", { class: "k", text: k }), h("div", { class: "v" }, v));
    facts.appendChild(h("div", { class: "facts", id: "run-facts" },
      fact("Workflow", run.name), fact("App", run.app_id),
      fact("Created", fmtTime(run.created)), fact(TERMINAL.has(run.status) ? "Finished" : "Last update", TERMINAL.has(run.status) ? fmtTime(run.completed || run.updated) : fmtAgo(run.updated)),
      fact("Duration", fmtDuration(end - run.created)),
      fact("History", `${fmtNumber(model ? model.events : 0)} events · ${fmtNumber(model ? model.steps : 0)} steps`),
      run.generation ? fact("Generation", `${run.generation + 1} (continued as new ${plural(run.generation, "time")})`) : null,
      run.rerun_of ? fact("Rerun of", h("span", {}, runLink(run.rerun_of), ` from step ${run.rerun_from}`)) : null,
      fact("Parent", run.parent ? runLink(run.parent) : h("span", { class: "none", text: "none" })),
      fact("Children", run.child_count ? `${fmtNumber(run.child_count)}` : h("span", { class: "none", text: "none" })),
      run.waiting_for ? fact("Waiting for", waitText(run.waiting_for)) : null,
      run.queued ? fact("Queued", h("span", { id: "run-queued", text: run.queued })) : null,
      ...timersOf(model).map((t) => fact(t.kind === "retry_timer" ? "Retry at" : "Timer fires",
        h("span", { class: "timer-fire", text: `${fmtTime(t.fire_at)} (${fmtRelative(t.fire_at)})` })))));
  }

  function renderData(run) {
    clear(data);
    const card = (title, field, clip) => h("div", { class: "card", id: `data-${field}` },
      h("div", { class: "card-head" }, h("h2", { text: title })),
      h("div", { class: "card-body" }, payloadView(clip, async () => (await api(`${path}/payload/${field}`)).value)));
    data.append(card("Input", "input", run.input), card("Output", "output", run.output));
    if (run.custom_status) data.append(card("Custom status", "custom_status", run.custom_status));
    data.className = run.custom_status ? "grid three" : "grid two";
  }

  function renderRelated(run) {
    clear(related);
    if (!run.children.length) return;
    const rows = run.children.map((c) => h("tr", {}, h("td", { class: "id" }, runLink(c.instance_id)), h("td", { text: c.name || "" }),
      h("td", {}, badge(c.status)), h("td", { text: fmtTime(c.created) })));
    related.appendChild(h("div", { class: "card", id: "children" },
      h("div", { class: "card-head" }, h("h2", { text: "Child workflows" }), h("span", { class: "subtle",
        text: run.child_count > run.children.length ? `first ${run.children.length} of ${fmtNumber(run.child_count)}` : `${run.child_count}` })),
      h("div", { class: "card-body flush" }, h("table", { class: "data" },
        h("thead", {}, h("tr", {}, ["Instance", "Workflow", "Status", "Created"].map((t) => h("th", { text: t })))), h("tbody", {}, rows)))));
  }

  function renderInbox(run) {
    clear(inbox);
    if (!run.inbox_count) return;
    inbox.appendChild(h("div", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: "Waiting to be processed" }),
      h("span", { class: "subtle", text: `${run.inbox_count} delivered event(s) the next step will consume` })),
      h("div", { class: "card-body" }, h("div", { class: "links" }, run.inbox.map((e) =>
        h("span", { class: "tag", text: [e.kind, e.name, e.seq !== null ? `seq ${e.seq}` : null].filter(Boolean).join(" · ") }))))));
  }

  async function refresh() {
    try {
      await loadAll();
    } catch (err) {
      clear(errorSlot).appendChild(errorBox(err));
      if (err.status === 404) poller.stop();
    }
  }

  const poller = new Poller(async () => {
    if (lastVersion === null) { await refresh(); return; }
    let v;
    try { v = await api(`${path}/version`); } catch (err) { clear(errorSlot).appendChild(errorBox(err)); if (err.status === 404) poller.stop(); return; }
    const [ver, state] = [v.version, v.state];
    const key = `${ver}|${state.split(":")[0]}|${state.split(":")[1]}`;
    if (key !== lastVersion) await refresh();
    else if (model && !TERMINAL.has(state.split(":")[0])) { model.now = Date.now(); model.span_end = Math.max(model.span_end, model.now); renderTimeline(timeline, model, { onNode }); }
  }, 1500).start();
  return () => poller.stop();
}


function waitText(w) {
  const parts = [];
  if (w.events.length) parts.push(`event${w.events.length > 1 ? "s" : ""} ${w.events.map((e) => `"${e}"`).join(", ")}`);
  if (w.calls) parts.push(`${w.calls} call${w.calls > 1 ? "s" : ""}`);
  if (!parts.length) return h("span", { class: "none", text: "nothing (next step pending)" });
  return `${w.mode === "all" && parts.length ? "all of " : w.events.length + w.calls > 1 ? "any of " : ""}${parts.join(" and ")}`;
}

function plural(n, one, many = `${one}s`) { return `${fmtNumber(n)} ${n === 1 ? one : many}`; }

function timersOf(model) {
  return model ? model.nodes.filter((n) => (n.kind === "timer" || n.kind === "retry_timer") && n.status === "waiting").slice(0, 5) : [];
}

/** The call whose failure failed the run: the last failed attempt with the run's error, and its attempts. */
function failedCall(model, f) {
  if (!model) return null;
  const text = `${f.error_type}: ${f.message}`;
  const failed = model.nodes.filter((n) => n.status === "failed" && (n.kind === "activity" || n.kind === "child"));
  const node = failed.filter((n) => n.error === text).pop() || failed.pop();
  if (!node) return null;
  const chain = model.calls[node.call] || [node.id];
  const attempts = chain.map((id) => model.nodes.find((n) => n.id === id)).filter((n) => n && n.kind === node.kind).length;
  const first = model.nodes.find((n) => n.id === node.call) || node;
  return { kind: node.kind, name: node.name, seq: first.seq, attempts };
}

// Frames of the engine and of Celery say nothing about the user's bug: fold them, show the user's first.
const ENGINE_FRAME = /[\\/](orchestrator|celery|kombu|billiard|asyncio|concurrent)[\\/]/;

function foldStack(text) {
  const lines = text.split("\n");
  const out = [];
  let user = null, folded = 0, run = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const m = line.match(/^\s+File "(.+)", line (\d+), in (.+)$/);
    if (!m) { if (run) { out.push(`  … ${run} engine frame${run > 1 ? "s" : ""}`); run = 0; } out.push(line); continue; }
    const code = lines[i + 1] && !/^\s+File "/.test(lines[i + 1]) && /^\s{4}/.test(lines[i + 1]) ? lines[i + 1] : null;
    const carets = code && lines[i + 2] && /^\s*[\^~]+\s*$/.test(lines[i + 2]) ? lines[i + 2] : null;
    const taken = (code ? 1 : 0) + (carets ? 1 : 0);
    if (ENGINE_FRAME.test(m[1])) { run++; folded++; i += taken; continue; }
    if (run) { out.push(`  … ${run} engine frame${run > 1 ? "s" : ""}`); run = 0; }
    user = { where: `${m[1].split(/[\\/]/).slice(-2).join("/")}:${m[2]} in ${m[3]}`, code: code ? code.trim() : null };
    out.push(line, ...[code, carets].filter(Boolean));
    i += taken;
  }
  if (run) out.push(`  … ${run} engine frame${run > 1 ? "s" : ""}`);
  return { text: out.join("\n"), user, folded };
}
