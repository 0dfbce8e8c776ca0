// Entry point: a hash router (#/overview, #/runs?..., #/run/<id>, #/apilog, #/schedules, #/pools). Each view is
// mount(container, params) -> cleanup, so timers of a page stop when the user leaves it.
import { clear, errorBox, timeZone, setTimeZone } from "./core.js";
import { mountOverview } from "./overview.js";
import { mountRuns } from "./runs.js";
import { mountRun } from "./run.js";
import { mountApiLog } from "./apilog.js";
import { mountSchedules } from "./schedules.js";
import { mountPools } from "./pools.js";

const routes = [
  { re: /^\/overview$/, nav: "overview", mount: (el, m, q) => mountOverview(el, q) },
  { re: /^\/runs$/, nav: "runs", mount: (el, m, q) => mountRuns(el, q) },
  { re: /^\/run\/(.+)$/, nav: "runs", mount: (el, m, q) => mountRun(el, decodeURIComponent(m[1]), q) },
  { re: /^\/apilog$/, nav: "apilog", mount: (el, m, q) => mountApiLog(el, q) },
  { re: /^\/schedules$/, nav: "schedules", mount: (el) => mountSchedules(el) },
  { re: /^\/pools$/, nav: "pools", mount: (el) => mountPools(el) },
];

let cleanup = null;

function route() {
  const raw = window.location.hash.replace(/^#/, "") || "/overview";
  const [path, query = ""] = raw.split("?");
  const params = new URLSearchParams(query);
  const view = document.getElementById("view");
  if (cleanup) { try { cleanup(); } catch (e) { /* ignore */ } cleanup = null; }
  clear(view);
  const match = routes.map((r) => [r, path.match(r.re)]).find(([, m]) => m);
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", !!match && a.dataset.nav === match[0].nav));
  if (!match) {
    view.appendChild(errorBox({ status: 404, message: `no page ${path}` }));
    return;
  }
  const [r, m] = match;
  cleanup = r.mount(view, m, params) || null;
  window.scrollTo(0, 0);
}

// The local / UTC toggle: every time on the page is drawn again in the chosen zone.
function zoneToggle() {
  const el = document.getElementById("zone");
  if (!el) return;
  const show = () => { el.textContent = timeZone() === "utc" ? "Times: UTC" : "Times: local"; el.dataset.zone = timeZone(); };
  el.addEventListener("click", () => { setTimeZone(timeZone() === "utc" ? "local" : "utc"); show(); route(); });
  show();
}

window.addEventListener("hashchange", route);
zoneToggle();
route();
