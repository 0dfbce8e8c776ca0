// Shared helpers: DOM building (text nodes only, never innerHTML), the API client, formatting,
// toasts and the confirmation dialog. Every value from the server reaches the page as a text node
// or an attribute set through the DOM, so a workflow input of "<script>" is displayed, not run.

const SVG_NS = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "orchestrator-dashboard-token";

/** Build an element. attrs: class, text, on<event> handlers, dataset, style; children: nodes or strings. */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** Same for SVG elements. */
export function s(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") el.style.cssText = String(value); // CSSOM: allowed by the page's CSP
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key === "className" ? "class" : key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// -- API ---------------------------------------------------------------------------------------
const BASE = new URL(".", window.location.href).pathname.replace(/\/$/, "");
{
  // A token given once in the URL (?token=...) is kept for this tab and sent as a bearer token.
  const params = new URLSearchParams(window.location.search);
  if (params.get("token")) sessionStorage.setItem(TOKEN_KEY, params.get("token"));
}

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-Orchestrator-Dashboard"] = "1";
  }
  let response;
  try {
    response = await fetch(`${BASE}/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    setConnection(false);
    throw new ApiError(0, `cannot reach the dashboard API (${err.message})`);
  }
  setConnection(true);
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = data && (data.detail || data.message);
    const message = typeof detail === "string" ? detail : detail ? JSON.stringify(detail) : response.statusText;
    throw new ApiError(response.status, message);
  }
  return data;
}

export function apiUrl(path) { return `${BASE}/api${path}`; }

function setConnection(ok) {
  const el = document.getElementById("conn");
  if (!el) return;
  el.classList.toggle("down", !ok);
  el.textContent = ok ? "connected" : "disconnected";
}

export const enc = encodeURIComponent;

// -- formatting --------------------------------------------------------------------------------
// Every time the page shows carries its date and its zone: UTC, or the browser's local zone with its
// offset (the toggle in the top bar; remembered in localStorage).
const pad = (n, w = 2) => String(n).padStart(w, "0");
const ZONE_KEY = "orchestrator-dashboard-zone";

export function timeZone() { return localStorage.getItem(ZONE_KEY) === "utc" ? "utc" : "local"; }
export function setTimeZone(zone) { localStorage.setItem(ZONE_KEY, zone === "utc" ? "utc" : "local"); }

function zoneLabel(d, utc) {
  if (utc) return "UTC";
  const off = -d.getTimezoneOffset();
  return `UTC${off < 0 ? "−" : "+"}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

/** "2026-12-02 01:12:40 UTC" (or local, with its offset); withMs adds milliseconds. */
export function fmtTime(ms, withMs = false) {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  const utc = timeZone() === "utc";
  const f = utc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
  const base = `${f[0]}-${pad(f[1])}-${pad(f[2])} ${pad(f[3])}:${pad(f[4])}:${pad(f[5])}`;
  return `${withMs ? `${base}.${pad(f[6], 3)}` : base} ${zoneLabel(d, utc)}`;
}

/** A moment with milliseconds (history rows, tooltips): the date and zone are always there. */
export function fmtClock(ms) { return fmtTime(ms, true); }

/** "in 6 d 23 h" / "3 h 5 m ago" relative to now. */
export function fmtRelative(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return "—";
  const diff = ms - now;
  const text = fmtDuration(Math.abs(diff)).replace(/\.\d+ s$/, " s");
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
  const m = Math.floor(s / 60), rs = Math.floor(s % 60);
  if (m < 60) return `${m} m ${rs} s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ${m % 60} m`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

export function fmtAgo(ms) {
  if (!ms) return "—";
  const diff = Date.now() - ms;
  if (diff < 5000) return "just now";
  return `${fmtDuration(diff).replace(/\.\d+ s$/, " s")} ago`;
}

export function fmtNumber(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} chars`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} K chars`;
  return `${(n / 1024 / 1024).toFixed(1)} M chars`;
}

export const STATUSES = ["RUNNING", "COMPLETED", "FAILED", "TERMINATED", "SUSPENDED", "PENDING"];
export const TERMINAL = new Set(["COMPLETED", "FAILED", "TERMINATED"]);

export function badge(status, big = false) {
  return h("span", { class: `badge ${status}${big ? " big" : ""}`, text: (status || "UNKNOWN").toLowerCase() });
}

export function runLink(id, text) {
  return h("a", { href: `#/run/${enc(id)}`, class: "mono", text: text ?? id, title: id });
}

// -- payload viewer: clipped JSON with "show all" -----------------------------------------------
/** clip = {text, size, truncated} from the server; loadFull() resolves to the whole value. */
export function payloadView(clip, loadFull, extraClass = "") {
  if (!clip) return h("div", { class: "none", text: "none" });
  const pre = h("pre", { class: `json ${extraClass}`, text: clip.text + (clip.truncated ? "\n…" : "") });
  const box = h("div", { class: "payload" }, pre);
  if (clip.truncated) {
    const btn = h("button", { class: "btn small", text: "Show all" });
    btn.addEventListener("click", async () => {
      btn.disabled = true;
      try {
        const value = await loadFull();
        pre.textContent = typeof value === "string" && extraClass.includes("stack") ? value : JSON.stringify(value, null, 2);
        more.remove();
      } catch (err) { toast(err.message, true); btn.disabled = false; }
    });
    const more = h("div", { class: "more" }, `Showing ${fmtBytes(clip.text.length)} of ${fmtBytes(clip.size)}.`, btn);
    box.appendChild(more);
  }
  return box;
}

// -- toasts and confirmation ------------------------------------------------------------------
export function toast(message, error = false) {
  const box = document.getElementById("toasts");
  const el = h("div", { class: `toast${error ? " err" : ""}`, text: message });
  box.appendChild(el);
  setTimeout(() => el.remove(), error ? 7000 : 3500);
}

/**
 * A modal confirmation. fields: [{name, label, type: "text"|"textarea", value, placeholder}].
 * onConfirm(values) may throw to keep the dialog open with the error shown.
 */
export function confirmDialog({ title, message, confirmText = "Confirm", danger = false, fields = [], onConfirm }) {
  const inputs = {};
  const error = h("div", { class: "m-error" });
  const body = h("div", { class: "m-body" }, h("p", { text: message }));
  for (const f of fields) {
    const id = `m-${f.name}`;  // dialog fields: not to clash with a page's own inputs (f-...)
    const input = f.type === "textarea"
      ? h("textarea", { id, name: f.name, placeholder: f.placeholder || "" })
      : h("input", { id, name: f.name, type: "text", placeholder: f.placeholder || "" });
    input.value = f.value || "";
    inputs[f.name] = input;
    body.appendChild(h("div", { class: "field" }, h("label", { for: id, text: f.label }), input));
  }
  body.appendChild(error);
  const cancel = h("button", { class: "btn", text: "Cancel", "data-role": "cancel" });
  const ok = h("button", { class: `btn ${danger ? "danger solid" : "primary"}`, text: confirmText, "data-role": "confirm" });
  const dialog = h("div", { class: "modal", role: "dialog", "aria-modal": "true", "aria-label": title },
    h("div", { class: "m-head" }, h("h2", { text: title })), body, h("div", { class: "m-foot" }, cancel, ok));
  const back = h("div", { class: "modal-back" }, dialog);
  const close = () => { back.remove(); document.removeEventListener("keydown", onKey); };
  const onKey = (e) => { if (e.key === "Escape") close(); };
  document.addEventListener("keydown", onKey);
  back.addEventListener("click", (e) => { if (e.target === back) close(); });
  cancel.addEventListener("click", close);
  ok.addEventListener("click", async () => {
    ok.disabled = true;
    error.textContent = "";
    const values = Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value]));
    try {
      await onConfirm(values);
      close();
    } catch (err) {
      error.textContent = err.message;
      ok.disabled = false;
    }
  });
  document.body.appendChild(back);
  (Object.values(inputs)[0] || ok).focus();
}

// -- polling that stops when the view goes away ------------------------------------------------
export class Poller {
  constructor(fn, intervalMs) { this.fn = fn; this.interval = intervalMs; this.timer = null; this.stopped = false; }
  start(now = true) { this.stopped = false; if (now) this.tick(); else this.schedule(); return this; }
  schedule() { if (!this.stopped) this.timer = setTimeout(() => this.tick(), this.interval); }
  async tick() {
    if (this.stopped) return;
    try { await this.fn(); } catch (err) { /* shown by the view; keep polling */ }
    this.schedule();
  }
  stop() { this.stopped = true; clearTimeout(this.timer); }
}

export function errorBox(err) {
  return h("div", { class: "error-box" }, h("strong", { text: err.status === 404 ? "Not found. " : "Error. " }), err.message);
}
