// The sensor's dashboard. Every value from the daemon is written with
// textContent: text a monitored server wrote is shown, never run.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
};
const row = (cells) => {
  const tr = el("tr");
  for (const c of cells) {
    const td = el("td");
    if (c instanceof Node) td.append(c); else td.textContent = c === undefined || c === null ? "" : String(c);
    tr.append(td);
  }
  return tr;
};
// the token comes in the address's fragment (#token=...), never sent to
// a server by the browser; the tab keeps it in sessionStorage
(() => {
  const m = location.hash.match(/token=([0-9A-Za-z_-]+)/);
  if (m) {
    sessionStorage.setItem("mcpsec_token", m[1]);
    history.replaceState(null, "", location.pathname + "#alerts");
  }
})();
const token = () => sessionStorage.getItem("mcpsec_token") || "";
const api = async (path, body) => {
  const headers = { Authorization: "Bearer " + token() };
  const opt = body === undefined ? { headers } : { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const r = await fetch("/api/" + path, opt);
  const v = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(v.error || r.statusText);
  return v;
};
const time = (t) => new Date(t).toLocaleString();
const sevClass = (s) => "sev sev-" + s;
const techniques = (tags) => (tags || []).filter((t) => /^T\d/.test(t)).join(" ");

let canAct = false;
let servers = [];
let incidents = [];

// ---- views
function show(view) {
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + view;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("on", a.dataset.view === view);
  ({ alerts: loadAlerts, landscape: loadLandscape, servers: loadServers, incidents: loadIncidents, posture: loadPosture }[view] || loadAlerts)();
}
window.addEventListener("hashchange", () => show(location.hash.slice(1) || "alerts"));

// ---- alerts
function filters() {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData($("#filters"))) if (v) q.set(k, v);
  q.set("limit", "500");
  return q;
}
function passes(t) {
  const f = Object.fromEntries(new FormData($("#filters")));
  const rank = { low: 1, medium: 2, high: 3, critical: 4 };
  const a = t.alert;
  if (f.severity && (rank[a.severity] || 0) < rank[f.severity]) return false;
  if (f.rule && a.rule !== f.rule) return false;
  if (f.server && !(a.server_name || "").startsWith(f.server)) return false;
  if (f.technique && !(a.tags || []).some((x) => x.startsWith(f.technique))) return false;
  return true;
}
function alertRow(t) {
  const a = t.alert;
  const resp = a.response ? (a.response.done || []).join(", ") || a.response.mode : "";
  const b = el("button", "verdict");
  b.className = "act-only";
  b.addEventListener("click", () => openVerdict(a.id));
  const tr = row([time(a.ts), el("span", a.severity, sevClass(a.severity)), a.rule, t.class, techniques(a.tags), a.server_name || a.server, a.output, resp, b]);
  tr.dataset.id = a.id;
  tr.dataset.rule = a.rule;
  return tr;
}
async function loadAlerts() {
  const ts = await api("threats?" + filters());
  const body = $("#alerts tbody");
  body.replaceChildren(...ts.reverse().map(alertRow));
}
function classOf(a) {
  if (a.source === "baseline") return "anomaly";
  const f = (a.source || "").split(":")[0].split("/").pop();
  return f.replace(/^00-/, "").replace(/\.ya?ml$/, "");
}
function live() {
  const es = new EventSource("/api/live?token=" + encodeURIComponent(token()));
  es.onopen = () => ($("#live-state").textContent = "live");
  es.onerror = () => ($("#live-state").textContent = "reconnecting");
  es.addEventListener("alert", (ev) => {
    const a = JSON.parse(ev.data);
    const t = { alert: a, class: classOf(a) };
    if (passes(t)) $("#alerts tbody").prepend(alertRow(t));
  });
}

// ---- landscape
async function loadLandscape() {
  const ts = await api("threats?since=24h&limit=100000");
  const now = Date.now();
  const hours = Array.from({ length: 24 }, () => ({ critical: 0, high: 0, medium: 0, low: 0 }));
  const byClass = {}, byRule = {}, byServer = {};
  for (const t of ts) {
    const a = t.alert;
    const h = 23 - Math.floor((now - new Date(a.ts)) / 3600e3);
    if (h >= 0 && h < 24 && a.severity in hours[h]) hours[h][a.severity]++;
    byClass[t.class] = (byClass[t.class] || 0) + 1;
    byRule[a.rule] = (byRule[a.rule] || 0) + 1;
    const s = a.server_name || a.server;
    byServer[s] = (byServer[s] || 0) + 1;
  }
  const max = Math.max(1, ...hours.map((h) => h.critical + h.high + h.medium + h.low));
  const hist = $("#histogram");
  hist.replaceChildren(...hours.map((h, i) => {
    const col = el("div", null, "bar");
    col.title = `${24 - i} h ago: ${h.critical} critical, ${h.high} high, ${h.medium} medium, ${h.low} low`;
    for (const s of ["low", "medium", "high", "critical"]) {
      const seg = el("div", null, "seg sev-" + s);
      seg.style.height = (100 * h[s]) / max + "%";
      col.append(seg);
    }
    return col;
  }));
  const top = (sel, m) => $(sel + " tbody").replaceChildren(...Object.entries(m).sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k, n]) => row([k, n])));
  top("#by-class", byClass);
  top("#top-rules", byRule);
  top("#top-servers", byServer);
}

// ---- servers and timelines
async function loadServers() {
  [servers, incidents] = await Promise.all([api("servers"), api("incidents")]);
  const body = $("#servers tbody");
  body.replaceChildren(...servers.map((s) => {
    const inc = incidents.filter((i) => i.server === s.name && i.contained_at && !i.released_at);
    const b = el("button", "timeline");
    b.addEventListener("click", () => openServer(s));
    const tr = row([s.name, (s.identity && s.identity.kind) || "", s.command, (s.roots || []).join(" "), s.calls, s.calls_in_flight, s.tainted_by || "", inc.length ? "contained" : "", b]);
    tr.dataset.server = s.server;
    tr.dataset.pid = s.pid;
    return tr;
  }));
}
function describe(e) {
  if (e.kind === "message") {
    let s = `${e.direction === "in" ? "→" : "←"} ${e.method || e.type}`;
    if (e.tool) s += " " + e.tool;
    if (e.params && e.params.arguments) s += " " + JSON.stringify(e.params.arguments);
    return s;
  }
  if (e.kind === "effect") {
    const what = e.path || e.addr || (e.argv || []).join(" ") || "";
    return `${e.type} ${what}${e.errno ? " (" + e.errno + ")" : ""}`;
  }
  if (e.kind === "alert") return `ALERT ${e.severity} ${e.rule}: ${e.output}`;
  return e.kind;
}
let current = null;
async function openServer(s) {
  current = s;
  $("#server-detail").hidden = false;
  $("#detail-name").textContent = s.name;
  const evs = await api("timeline?server=" + encodeURIComponent(s.server));
  const list = $("#timeline");
  list.replaceChildren(...evs.map((e) => {
    const li = el("li", null, "ev ev-" + e.kind + (e.kind === "alert" ? " " + sevClass(e.severity) : ""));
    const call = e.call ? ` [call ${e.call.tool || ""} #${e.call.id}]` : "";
    li.append(el("time", new Date(e.ts).toISOString().slice(11, 23)), el("span", describe(e) + call));
    if (e.kind === "message" && e.method === "tools/call") li.classList.add("call");
    return li;
  }));
  // the process tree, from the exec and fork effects
  const procs = new Map();
  for (const e of evs) {
    if (e.kind !== "effect" && e.kind !== "message") continue;
    const p = procs.get(e.pid) || { pid: e.pid, ppid: e.ppid, comm: e.comm, argv: "" };
    if (e.type === "exec") p.argv = (e.argv || []).join(" ");
    procs.set(e.pid, p);
  }
  const tree = $("#proctree");
  const node = (p) => {
    const li = el("li", `${p.pid} ${p.comm || ""} ${p.argv}`);
    const kids = [...procs.values()].filter((c) => c.ppid === p.pid && c.pid !== p.pid);
    if (kids.length) { const ul = el("ul"); ul.append(...kids.map(node)); li.append(ul); }
    return li;
  };
  tree.replaceChildren(...[...procs.values()].filter((p) => !procs.has(p.ppid)).map(node));
}
async function act(action) {
  const out = $("#act-result");
  try {
    const v = await api(action, { pid: current.mcp_pid || current.pid, reason: $("#act-reason").value });
    out.textContent = v.result || "done";
    out.className = "ok";
  } catch (e) {
    out.textContent = e.message;
    out.className = "err";
  }
}

// ---- incidents
async function loadIncidents() {
  incidents = await api("incidents");
  const ms = (x) => (x ? x.toFixed(1) + " ms" : "");
  $("#incidents tbody").replaceChildren(...incidents.map((i) => row([time(i.time), i.rule, i.server, ms(i.detect_ms), ms(i.respond_ms),
    i.contained_at ? time(i.contained_at) : (i.done || []).join(", "), i.released_at ? time(i.released_at) + " by " + i.released_by : ""])));
}

// ---- posture and compliance
async function loadPosture() {
  const [p, c] = await Promise.all([api("posture"), api("compliance")]);
  const f = p.last_24h;
  $("#score").textContent = f.security_score;
  $("#score").className = "score " + (f.security_score >= 80 ? "good" : f.security_score >= 50 ? "fair" : "poor");
  const ms = (x) => (x === null || x === undefined ? "-" : x.toFixed(2) + " ms");
  $("#posture tbody").replaceChildren(
    row(["Threats detected (24 h)", f.threats_detected]),
    row(["Threats blocked", `${f.threats_blocked} ` + JSON.stringify(f.blocked_by)]),
    row(["False-positive rate", f.false_positive_rate === null ? "- (no verdicts)" : (100 * f.false_positive_rate).toFixed(0) + "% of " + f.verdicts]),
    row(["Mean time to detection", ms(f.mean_time_to_detection_ms)]),
    row(["Mean time to response", ms(f.mean_time_to_response_ms)]),
    row(["Score deductions", (f.score_deductions || []).join("; ")]),
  );
  $("#compliance tbody").replaceChildren(
    row(["Status", el("span", c.compliance_status, "status-" + c.compliance_status)]),
    row(["Audit trail", c.audit_trail_verified ? `verified, ${c.records} records` : "BROKEN: " + c.problem]),
    row(["Period", c.from ? time(c.from) + " – " + time(c.to) : ""]),
    row(["Rules loaded", c.rules_loaded]),
    row(["Response", c.response]),
  );
}

function notice(text, cls) {
  const n = $("#notice");
  n.textContent = text;
  n.className = cls;
}

// ---- verdicts
function openVerdict(id) {
  $("#verdict-id").textContent = id;
  $("#verdict-result").textContent = "";
  $("#verdict-dialog").showModal();
}
$("#verdict-dialog").addEventListener("close", async () => {
  const d = $("#verdict-dialog");
  if (d.returnValue !== "ok") return;
  const f = new FormData(d.querySelector("form"));
  try {
    const v = await api("verdict", { alert_id: $("#verdict-id").textContent, verdict: f.get("v"), reason: f.get("reason"), except: f.get("except") === "on" });
    notice(v.result, "ok");
    loadAlerts();
  } catch (e) {
    notice(e.message, "err");
  }
});

// ---- start
async function start() {
  const who = await api("whoami");
  canAct = who.act;
  document.body.classList.toggle("can-act", canAct);
  $("#role").textContent = canAct ? "may act" : "view only";
  const st = await api("status");
  $("#health").textContent = `${st.ready ? "ready" : "starting"} · ${st.profile} · response ${st.response} · ${st.rules} rules`;
  $("#filters").addEventListener("change", loadAlerts);
  $("#btn-contain").addEventListener("click", () => act("contain"));
  $("#btn-release").addEventListener("click", () => act("release"));
  live();
  show(location.hash.slice(1) || "alerts");
}
start().catch((e) => { document.body.prepend(el("p", "the dashboard could not start: " + e.message, "err")); });
