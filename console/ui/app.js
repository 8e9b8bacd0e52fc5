// Cairn console: one page, no framework. It talks to the member through
// etcd's JSON gateway (/v3/...) and /console/api/... (docs/console.md).
"use strict";
(function () {
const $ = (s, el) => (el || document).querySelector(s);
const $$ = (s, el) => Array.from((el || document).querySelectorAll(s));
const enc = new TextEncoder();
let cfg = { gateway: true, read_only: false, interval_ms: 2000 };
let token = sessionStorage.getItem("cairn-token") || "";
let user = sessionStorage.getItem("cairn-user") || "";
let status = null; // last /console/api/status
let page = "";
const timers = {};

// ---- bytes, base64 ----
function b64(bytes) { let s = ""; for (const b of bytes) s += String.fromCharCode(b); return btoa(s); }
function unb64(s) { if (!s) return new Uint8Array(); const bin = atob(s); const out = new Uint8Array(bin.length); for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i); return out; }
function text(bytes) { try { return new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch (e) { return null; } }
function hex(bytes) { return Array.from(bytes, b => b.toString(16).padStart(2, "0")).join(" "); }
function show(bytes) { const t = text(bytes); return t === null ? "0x" + hex(bytes).replace(/ /g, "") : t; }
function prefixEnd(bytes) {
  const b = Array.from(bytes);
  while (b.length) { if (b[b.length - 1] < 0xff) { b[b.length - 1]++; return new Uint8Array(b); } b.pop(); }
  return new Uint8Array([0]); // every key
}
function size(n) { n = Number(n || 0); const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + " " + u[i]; }
function hexToDec(h) { return BigInt("0x" + h).toString(); }
function decToHex(d) { return BigInt(d || 0).toString(16); }
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v); }
  for (const k of kids) e.append(k instanceof Node ? k : String(k ?? ""));
  return e;
}

// ---- messages, confirmation, login ----
function message(msg, info) {
  const m = $("#message"); m.textContent = msg; m.className = info ? "info" : ""; m.hidden = !msg;
}
function confirmBox(txt) {
  return new Promise(resolve => {
    const d = $("#confirm"); $("#confirm-text").textContent = txt;
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.returnValue = ""; d.showModal();
  });
}
function needsLogin(msg) { return /user name is empty|invalid auth token/i.test(msg || ""); }
function setUser() {
  $("#user-name").textContent = user ? "user " + user : "";
  $("#login-open").hidden = !!token; $("#logout").hidden = !token;
}

// ---- HTTP ----
async function call(path, opts) {
  opts = opts || {};
  const headers = Object.assign({ "Content-Type": "application/json" }, opts.headers || {});
  if (token) headers.Authorization = token;
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  const body = await r.text();
  let j = null; try { j = body ? JSON.parse(body) : {}; } catch (e) { j = { message: body }; }
  if (!r.ok || (j && j.error && !j.result)) {
    const msg = (j && (j.message || j.error)) || r.status + " " + r.statusText;
    if (needsLogin(msg)) $("#login").hidden = false;
    const err = new Error(msg); err.status = r.status; throw err;
  }
  return j;
}
const gw = (p, body) => call("/v3/" + p, { method: "POST", body: JSON.stringify(body || {}) });

// ---- pages ----
function route() {
  const p = (location.hash || "#cluster").slice(1);
  page = ["cluster", "charts", "keys", "watch", "ops"].includes(p) ? p : "cluster";
  for (const s of $$(".page")) s.hidden = s.id !== "page-" + page;
  for (const a of $$("nav a")) a.classList.toggle("active", a.dataset.page === page);
  document.body.dataset.page = page;
  if (page === "charts") refreshCharts();
  if (page === "ops") fillOps();
}

// ---- cluster ----
function memberName(id) { const m = status && status.members.find(m => m.id === id); return m ? (m.name || id) : id; }
async function refreshStatus() {
  try {
    status = await call("/console/api/status");
  } catch (e) { $("#leader-name").textContent = "?"; message("status: " + e.message); return; }
  if (!$("#message").classList.contains("info") && $("#message").textContent.startsWith("status:")) message("");
  const st = status;
  $("#cluster-id").textContent = st.cluster_id;
  $("#leader-name").textContent = st.leader ? memberName(st.leader) + " (" + st.leader + ")" : "none";
  $("#leader-name").dataset.leader = st.leader ? memberName(st.leader) : "";
  const lead = st.members.find(m => m.id === st.leader);
  $("#cluster-term").textContent = lead ? lead.raft_term : (st.members.find(m => m.raft_term) || {}).raft_term || "?";
  $("#cluster-revision").textContent = Math.max(0, ...st.members.map(m => Number(m.revision || 0))) || "?";
  $("#cluster-alarms").textContent = st.alarms_error ? st.alarms_error : (st.alarms.length ? st.alarms.map(a => a.alarm + " on " + memberName(a.member_id)).join(", ") : "none");
  $("#cluster-updated").textContent = new Date().toLocaleTimeString();
  const tb = $("#members tbody"); tb.textContent = "";
  for (const m of st.members) {
    const role = m.is_learner ? "learner" : (m.id === st.leader ? "leader" : (m.reachable ? "follower" : "unknown"));
    const tr = el("tr", { "data-id": m.id, "data-name": m.name, "data-role": role },
      el("td", {}, m.name || "(unstarted)"), el("td", { class: "mono" }, m.id),
      el("td", { class: "role-" + role }, role),
      el("td", { class: m.reachable ? "yes" : "no" }, m.reachable ? "yes" : "no"),
      el("td", { class: "num" }, m.raft_term || ""), el("td", { class: "num" }, m.raft_index || ""),
      el("td", { class: "num" }, m.raft_applied_index || ""),
      el("td", { class: "num" }, m.db_size ? size(m.db_size) : ""), el("td", { class: "num" }, m.db_size_in_use ? size(m.db_size_in_use) : ""),
      el("td", {}, m.version || ""), el("td", { class: "mono" }, m.client_urls.join(", ")),
      el("td", {}, [m.error || "", ...(m.errors || [])].filter(Boolean).join("; ")));
    tb.append(tr);
  }
  drawTopology(st);
  if (page === "ops") fillOps();
}
function drawTopology(st) {
  const svg = $("#topology"); const ns = "http://www.w3.org/2000/svg";
  svg.textContent = "";
  const n = st.members.length, cx = 210, cy = 120, r = n > 1 ? 80 : 0;
  const pos = {};
  st.members.forEach((m, i) => { const a = -Math.PI / 2 + 2 * Math.PI * i / n; pos[m.id] = [cx + r * Math.cos(a), cy + r * Math.sin(a)]; });
  const mk = (t, a) => { const e = document.createElementNS(ns, t); for (const [k, v] of Object.entries(a)) e.setAttribute(k, v); svg.append(e); return e; };
  if (st.leader && pos[st.leader]) for (const m of st.members) if (m.id !== st.leader) {
    const [lx, ly] = pos[st.leader], [mx, my] = pos[m.id];
    const d = Math.hypot(mx - lx, my - ly) || 1, ux = (mx - lx) / d, uy = (my - ly) / d;
    // From the leader's circle's edge to the member's.
    const x1 = lx + 30 * ux, y1 = ly + 30 * uy, x2 = mx - 24 * ux, y2 = my - 24 * uy;
    mk("line", { x1, y1, x2, y2, stroke: m.reachable ? "#9fb3d9" : "#e5a5a5", "stroke-width": 2, "stroke-dasharray": m.reachable ? "" : "4 4" });
  }
  for (const m of st.members) {
    const [x, y] = pos[m.id]; const leader = m.id === st.leader;
    mk("circle", { cx: x, cy: y, r: leader ? 30 : 24, fill: !m.reachable ? "#fbe3e3" : leader ? "#fff3d6" : "#eaf0fb", stroke: !m.reachable ? "#d23b3b" : leader ? "#e29b00" : "#2f6fdb", "stroke-width": leader ? 3 : 2, "stroke-dasharray": m.is_learner ? "5 3" : "" });
    const t = mk("text", { x, y: y + 4, "text-anchor": "middle", "font-size": 13, "font-weight": leader ? 700 : 400 }); t.textContent = m.name || m.id.slice(0, 6);
    const s = mk("text", { x, y: y + (leader ? 46 : 40), "text-anchor": "middle", "font-size": 11, fill: "#667085" });
    s.textContent = leader ? "leader" : m.is_learner ? "learner" : m.reachable ? "follower" : "unreachable";
  }
}

// ---- charts ----
const chartDefs = [
  { title: "Requests / s", series: [["requests_per_s", "gRPC requests/s"]] },
  { title: "Request latency (ms)", series: [["request_p50_ms", "p50"], ["request_p99_ms", "p99"]] },
  { title: "Proposals / s", series: [["proposals_committed_per_s", "committed"], ["proposals_applied_per_s", "applied"], ["proposals_failed_per_s", "failed"], ["proposals_pending", "pending"]] },
  { title: "Disk latency (ms)", series: [["wal_fsync_p50_ms", "WAL fsync p50"], ["wal_fsync_p99_ms", "WAL fsync p99"], ["backend_commit_p50_ms", "commit p50"], ["backend_commit_p99_ms", "commit p99"]] },
  { title: "Database size (bytes)", series: [["db_size_bytes", "size"], ["db_in_use_bytes", "in use"], ["quota_bytes", "quota"]] },
  { title: "Watchers and leases", series: [["watchers", "watchers"], ["watch_streams", "watch streams"], ["leases_granted_per_s", "leases granted/s"], ["leases_revoked_per_s", "leases revoked/s"]] },
];
function compact(v) { if (v == null) return ""; const a = Math.abs(v); for (const [d, s] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) if (a >= d) return +(v / d).toFixed(1) + s; return +v.toFixed(2) + ""; }
const colors = ["#2f6fdb", "#e29b00", "#d23b3b", "#1f9d55"];
const plots = [];
async function refreshCharts() {
  if (page !== "charts") return;
  let m;
  try { m = await call("/console/api/metrics"); } catch (e) { message("metrics: " + e.message); return; }
  $("#chart-interval").textContent = (m.interval_ms / 1000).toString();
  const xs = m.times.map(t => t / 1000);
  const box = $("#charts");
  box.dataset.points = xs.length;
  chartDefs.forEach((d, i) => {
    const data = [xs, ...d.series.map(([k]) => m.series[k] || [])];
    if (!plots[i]) {
      const div = el("div", { class: "chart", "data-chart": d.title }, el("h3", {}, d.title));
      box.append(div);
      if (typeof uPlot === "undefined") { div.append("(chart library missing)"); return; }
      plots[i] = new uPlot({ width: 420, height: 200, series: [{}, ...d.series.map(([, label], j) => ({ label, stroke: colors[j % 4], width: 1.5, spanGaps: false }))], axes: [{}, { size: 60, values: (u, vals) => vals.map(compact) }] }, data, div);
    } else plots[i].setData(data);
  });
}

// ---- keys ----
let pages = [], pageStart = null, nextStart = null, keysPrefix = new Uint8Array();
const PAGE = 50;
function relist() { if (pageStart) listKeys(pageStart); }
async function listKeys(start) {
  if (!start.length) start = new Uint8Array([0]);
  const end = prefixEnd(keysPrefix);
  try {
    const r = await gw("kv/range", { key: b64(start), range_end: b64(end), limit: PAGE + 1, keys_only: true });
    const kvs = r.kvs || [];
    pageStart = start;
    nextStart = kvs.length > PAGE ? unb64(kvs[PAGE].key) : null;
    const tb = $("#keys-table tbody"); tb.textContent = "";
    for (const kv of kvs.slice(0, PAGE)) {
      const key = unb64(kv.key);
      tb.append(el("tr", { "data-key": show(key), onclick: ev => { $$("#keys-table tr").forEach(t => t.classList.remove("selected")); ev.currentTarget.classList.add("selected"); openKey(key); } },
        el("td", { class: "mono" }, show(key)), el("td", { class: "num" }, kv.mod_revision), el("td", { class: "num" }, kv.version)));
    }
    $("#keys-count").textContent = (r.count || 0) + " keys with this prefix";
    $("#keys-next").disabled = !nextStart; $("#keys-prev").disabled = pages.length === 0;
  } catch (e) { $("#keys-table tbody").textContent = ""; $("#keys-count").textContent = ""; message("range: " + e.message); }
}
function keyPrefixInput() { keysPrefix = enc.encode($("#keys-prefix").value); pages = []; return listKeys(keysPrefix.length ? keysPrefix : new Uint8Array([0])); }
let valueMode = "text";
async function openKey(key) {
  const d = $("#key-detail"); d.textContent = "";
  let r;
  try { r = await gw("kv/range", { key: b64(key) }); } catch (e) { d.append(el("p", { class: "no" }, e.message)); return; }
  const kv = (r.kvs || [])[0];
  if (!kv) { d.append(el("p", {}, show(key) + ": no such key (deleted)")); return; }
  const val = unb64(kv.value);
  const pre = el("pre", { id: "key-value" });
  const render = () => {
    const t = text(val); // null: not UTF-8, shown in hex whatever the mode
    if (valueMode === "hex" || t === null) pre.textContent = hex(val);
    else if (valueMode === "json") { try { pre.textContent = JSON.stringify(JSON.parse(t), null, 2); } catch (e) { pre.textContent = "(not JSON) " + t; } }
    else pre.textContent = t;
  };
  const modes = el("div", { class: "row" }, ...["text", "json", "hex"].map(mo => el("button", { type: "button", onclick: () => { valueMode = mo; render(); } }, mo.toUpperCase())));
  const lease = kv.lease && kv.lease !== "0" ? decToHex(kv.lease) : "";
  const leaseCell = el("span", { id: "key-lease" }, lease ? lease + " (TTL …)" : "none");
  d.append(el("h3", { class: "mono", id: "key-name" }, show(key)),
    el("div", {}, `create revision ${kv.create_revision || 0} · mod revision ${kv.mod_revision || 0} · version ${kv.version || 0} · ${val.length} bytes · lease `, leaseCell),
    modes, pre,
    el("div", { class: "row write" },
      el("button", { type: "button", onclick: () => { $("#put-key").value = show(key); $("#put-value").value = text(val) ?? ""; $("#put-lease").value = lease; } }, "Edit"),
      el("button", { type: "button", class: "danger", id: "key-delete", onclick: () => deleteKey(key) }, "Delete")),
    el("h4", {}, "History"), el("ol", { id: "key-history" }));
  render();
  if (lease) gw("lease/timetolive", { ID: kv.lease }).then(t => { leaseCell.textContent = `${lease} (TTL ${t.TTL} s of ${t.grantedTTL} s)`; }).catch(e => { leaseCell.textContent = lease + " (" + e.message + ")"; });
  history(key, kv);
}
async function history(key, kv) {
  const ol = $("#key-history");
  let cur = kv;
  for (let i = 0; i < 20 && cur; i++) {
    ol.append(el("li", {}, `rev ${cur.mod_revision} (v${cur.version}): `, el("span", { class: "mono" }, show(unb64(cur.value)).slice(0, 200))));
    if (Number(cur.version) <= 1) { ol.append(el("li", { class: "hint" }, `created at revision ${cur.create_revision}`)); return; }
    try {
      const r = await gw("kv/range", { key: b64(key), revision: String(Number(cur.mod_revision) - 1) });
      cur = (r.kvs || [])[0];
    } catch (e) { ol.append(el("li", { class: "hint" }, "older revisions: " + e.message)); return; }
  }
}
async function deleteKey(key) {
  if (!await confirmBox(`Delete ${show(key)}? (etcdctl del ${show(key)})`)) return;
  try { const r = await gw("kv/deleterange", { key: b64(key) }); message(`deleted ${r.deleted || 0} key(s), revision ${r.header.revision}`, true); relist(); openKey(key); }
  catch (e) { message("delete: " + e.message); }
}
async function putKey(ev) {
  ev.preventDefault();
  const key = $("#put-key").value, value = $("#put-value").value, lease = $("#put-lease").value.trim();
  if (!await confirmBox(`Put ${key} = ${value.length > 80 ? value.slice(0, 80) + "…" : value}?` + (lease ? ` (lease ${lease})` : ""))) return;
  const req = { key: b64(enc.encode(key)), value: b64(enc.encode(value)) };
  if (lease) req.lease = hexToDec(lease);
  try { const r = await gw("kv/put", req); message(`put ${key}, revision ${r.header.revision}`, true); relist(); openKey(enc.encode(key)); }
  catch (e) { message("put: " + e.message); }
}

// ---- watch ----
let watchAbort = null;
async function startWatch(ev) {
  ev.preventDefault();
  stopWatch();
  const prefix = enc.encode($("#watch-prefix").value);
  const wkey = prefix.length ? prefix : new Uint8Array([0]);
  const ctl = new AbortController(); watchAbort = ctl;
  $("#watch-start").disabled = true; $("#watch-stop").disabled = false; $("#watch-state").textContent = "connecting…";
  const headers = { "Content-Type": "application/json" }; if (token) headers.Authorization = token;
  try {
    const r = await fetch("/v3/watch", { method: "POST", headers, signal: ctl.signal,
      body: JSON.stringify({ create_request: { key: b64(wkey), range_end: b64(prefixEnd(prefix)), prev_kv: $("#watch-prev").checked } }) });
    if (!r.ok) throw new Error(await r.text());
    const reader = r.body.getReader(); const dec = new TextDecoder(); let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) { const line = buf.slice(0, i).trim(); buf = buf.slice(i + 1); if (line) watchLine(line); }
    }
    $("#watch-state").textContent = "ended";
  } catch (e) { if (e.name !== "AbortError") { $("#watch-state").textContent = "failed"; message("watch: " + e.message); } }
  finally { if (watchAbort === ctl) { $("#watch-start").disabled = false; $("#watch-stop").disabled = true; watchAbort = null; } }
}
function watchLine(line) {
  let j; try { j = JSON.parse(line); } catch (e) { return; }
  if (j.error) { message("watch: " + (j.error.message || JSON.stringify(j.error))); return; }
  const res = j.result || {};
  if (res.created) $("#watch-state").textContent = `watching (id ${res.watch_id || 0}) from revision ${Number(res.header.revision) + 1}`;
  if (res.canceled) $("#watch-state").textContent = "canceled: " + (res.cancel_reason || "") + (res.compact_revision ? ` (compacted at ${res.compact_revision})` : "");
  const tb = $("#watch-events tbody");
  for (const e of res.events || []) {
    const type = e.type || "PUT";
    tb.prepend(el("tr", { class: "ev-" + type, "data-key": show(unb64(e.kv.key)) },
      el("td", {}, type), el("td", {}, show(unb64(e.kv.key))), el("td", {}, type === "PUT" ? show(unb64(e.kv.value)) : ""),
      el("td", {}, e.prev_kv ? show(unb64(e.prev_kv.value)) : ""), el("td", { class: "num" }, e.kv.mod_revision)));
  }
  while (tb.rows.length > 500) tb.deleteRow(-1);
}
function stopWatch() { if (watchAbort) { watchAbort.abort(); watchAbort = null; $("#watch-state").textContent = "stopped"; $("#watch-start").disabled = false; $("#watch-stop").disabled = true; } }

// ---- operations ----
function progress(label, value, max) {
  const p = $("#op-progress"); p.hidden = label === null; $("#op-progress-label").textContent = label || "";
  const bar = $("#op-progress-bar");
  if (value === undefined) bar.removeAttribute("value"); else { bar.max = max; bar.value = value; }
}
async function op(label, confirmText, f) {
  if (confirmText && !await confirmBox(confirmText)) return;
  progress(label + "…"); $("#op-result").textContent = "";
  try { const r = await f(); $("#op-result").textContent = label + ": done" + (r ? "\n" + r : ""); message(label + ": done", true); }
  catch (e) { $("#op-result").textContent = label + ": " + e.message; message(label + ": " + e.message); }
  finally { progress(null); refreshStatus(); }
}
let opsShown = "";
function fillOps() {
  if (!status) return;
  // Rebuilt only when something changed, so a click is never lost to a refresh.
  const sig = JSON.stringify([status.members.map(m => [m.id, m.name, m.is_learner]), status.alarms, status.alarms_error || ""]);
  if (sig === opsShown) return;
  opsShown = sig;
  for (const s of $$(".member-select")) {
    const v = s.value; s.textContent = "";
    for (const m of status.members) s.append(el("option", { value: m.id }, (m.name || "(unstarted)") + " " + m.id));
    if (v) s.value = v;
  }
  const rev = $("#compact-rev");
  if (!rev.value) rev.value = Math.max(0, ...status.members.map(m => Number(m.revision || 0))) || "";
  const at = $("#alarms tbody"); at.textContent = "";
  if (!status.alarms.length) at.append(el("tr", {}, el("td", {}, status.alarms_error || "no alarm raised")));
  for (const a of status.alarms) at.append(el("tr", {}, el("td", {}, a.alarm + " on " + memberName(a.member_id)),
    el("td", {}, el("button", { type: "button", onclick: () => op("alarm disarm", `Disarm ${a.alarm} on ${memberName(a.member_id)}? (etcdctl alarm disarm)`,
      () => gw("maintenance/alarm", { action: "DEACTIVATE", memberID: hexToDec(a.member_id), alarm: a.alarm }).then(r => JSON.stringify(r.alarms || []))) }, "Disarm"))));
  const mt = $("#ops-members tbody"); mt.textContent = "";
  for (const m of status.members) mt.append(el("tr", { "data-id": m.id }, el("td", {}, (m.name || "(unstarted)") + " " + m.id + (m.is_learner ? " (learner)" : "")),
    el("td", {}, m.is_learner ? el("button", { type: "button", class: "promote", onclick: () => op("member promote", `Promote learner ${m.id}? (etcdctl member promote ${m.id})`, () => gw("cluster/member/promote", { ID: hexToDec(m.id) }).then(() => `member ${m.id} promoted`)) }, "Promote") : "",
      el("button", { type: "button", class: "danger remove", onclick: () => op("member remove", `Remove member ${m.name || ""} ${m.id}? (etcdctl member remove ${m.id})`, () => gw("cluster/member/remove", { ID: hexToDec(m.id) }).then(() => `member ${m.id} removed`)) }, "Remove"))));
}
async function snapshot(ev) {
  ev.preventDefault();
  const id = $("#snapshot-member").value;
  progress("snapshot", 0, 1); $("#op-result").textContent = "";
  try {
    const headers = {}; if (token) headers.Authorization = token;
    const r = await fetch("/console/api/snapshot?member=" + id, { headers });
    if (!r.ok) { const j = await r.json().catch(() => ({})); throw new Error(j.message || r.statusText); }
    const total = Number(r.headers.get("Content-Length") || 0);
    const reader = r.body.getReader(); const parts = []; let got = 0;
    for (;;) { const { value, done } = await reader.read(); if (done) break; parts.push(value); got += value.length; progress(`snapshot ${size(got)} of ${size(total)}`, got, total || got); }
    if (total && got !== total) throw new Error(`cut short at ${got} of ${total} bytes`);
    const blob = new Blob(parts, { type: "application/octet-stream" });
    const check = await verifySnapshot(blob);
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: `snapshot-${id}.db` }); document.body.append(a); a.click(); a.remove();
    $("#op-result").textContent = `snapshot of ${id}: ${got} bytes saved, ${check}`; message(`snapshot: ${size(got)}, ${check}`, true);
  } catch (e) { $("#op-result").textContent = "snapshot: " + e.message; message("snapshot: " + e.message); }
  finally { progress(null); }
}

// verifySnapshot checks the SHA-256 of the database that etcd appends to a
// snapshot (its last 32 bytes), as etcdutl snapshot restore does.
async function verifySnapshot(blob) {
  if (!(window.crypto && crypto.subtle)) return "SHA-256 not checked (the browser allows it over HTTPS or on localhost only)";
  const buf = new Uint8Array(await blob.arrayBuffer());
  if (buf.length < 32) throw new Error("snapshot too short");
  const sum = new Uint8Array(await crypto.subtle.digest("SHA-256", buf.subarray(0, buf.length - 32)));
  const want = buf.subarray(buf.length - 32);
  if (!sum.every((b, i) => b === want[i])) throw new Error("snapshot SHA-256 mismatch: the file is damaged");
  return "SHA-256 verified";
}

// ---- start ----
async function start() {
  try { cfg = Object.assign(cfg, await call("/console/api/config")); } catch (e) { message("config: " + e.message); }
  document.body.classList.toggle("readonly", !!cfg.read_only);
  $("#mode").textContent = (cfg.read_only ? "read-only · " : "") + (cfg.version ? "v" + cfg.version : "");
  $(".write-hint").textContent = cfg.read_only ? "Read-only console (--console-read-only): no writes from here." : "Each operation asks for confirmation and does what the etcdctl command named in it does, through the same API.";
  if (!cfg.gateway) { for (const e of $$(".needs-gateway")) e.hidden = true; $(".no-gateway").hidden = false; }
  setUser();
  $("#login-open").onclick = () => { $("#login").hidden = false; $("#login-name").focus(); };
  $("#login-cancel").onclick = () => { $("#login").hidden = true; };
  $("#logout").onclick = () => { token = user = ""; sessionStorage.clear(); setUser(); refreshStatus(); };
  $("#login").onsubmit = async ev => {
    ev.preventDefault();
    const name = $("#login-name").value, password = $("#login-password").value;
    try {
      token = ""; const r = await call(cfg.gateway ? "/v3/auth/authenticate" : "/console/api/authenticate", { method: "POST", body: JSON.stringify({ name, password }) });
      token = r.token; user = name; sessionStorage.setItem("cairn-token", token); sessionStorage.setItem("cairn-user", user);
      $("#login").hidden = true; $("#login-password").value = ""; setUser(); message("logged in as " + name, true); refreshStatus();
    } catch (e) { message("log in: " + e.message); }
  };
  $("#keys-form").onsubmit = ev => { ev.preventDefault(); keyPrefixInput(); };
  $("#keys-next").onclick = () => { if (nextStart) { pages.push(pageStart); listKeys(nextStart); } };
  $("#keys-prev").onclick = () => { if (pages.length) listKeys(pages.pop()); };
  $("#put-form").onsubmit = putKey;
  $("#watch-form").onsubmit = startWatch;
  $("#watch-stop").onclick = stopWatch;
  $("#op-compact").onsubmit = ev => { ev.preventDefault(); const rev = $("#compact-rev").value.trim(), physical = $("#compact-physical").checked;
    op("compaction", `Compact up to revision ${rev}${physical ? " (physical)" : ""}? (etcdctl compaction ${physical ? "--physical " : ""}${rev})`, () => gw("kv/compaction", { revision: rev, physical }).then(() => `compacted revision ${rev}`)); };
  $("#op-defrag").onsubmit = ev => { ev.preventDefault(); const id = $("#defrag-member").value;
    op("defragment", `Defragment member ${memberName(id)} ${id}? It blocks the member's reads and writes while it runs. (etcdctl defrag --endpoints=<its client URL>)`, () => call("/console/api/defragment?member=" + id, { method: "POST" }).then(() => `defragmented ${id}`)); };
  $("#op-member-add").onsubmit = ev => { ev.preventDefault(); const urls = $("#member-add-urls").value.split(",").map(s => s.trim()).filter(Boolean), learner = $("#member-add-learner").checked;
    op("member add", `Add ${learner ? "learner" : "member"} at ${urls.join(",")}? (etcdctl member add --peer-urls=${urls.join(",")}${learner ? " --learner" : ""})`,
      () => gw("cluster/member/add", { peerURLs: urls, isLearner: learner }).then(r => `added member ${decToHex(r.member.ID)}`)); };
  $("#op-snapshot").onsubmit = snapshot;
  window.addEventListener("hashchange", route);
  route();
  refreshStatus();
  timers.status = setInterval(() => { if (page === "cluster" || page === "ops") refreshStatus(); }, 1000);
  timers.charts = setInterval(refreshCharts, Math.max(1000, cfg.interval_ms || 2000));
  document.body.dataset.ready = "true";
}
document.addEventListener("DOMContentLoaded", start);
})();
