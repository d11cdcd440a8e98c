// The elafros dashboard: plain JavaScript against the daemon's own API. The session is an
// HttpOnly cookie set by POST /ui/session; every change carries the X-CSRF-Token it returned.
// Lists come from the API and stay live through its watch streams, figures through the
// servicemetrics stream; nothing polls faster than once a second.
"use strict";

const state = {
  csrf: "", user: "", namespace: "default",
  services: new Map(), metrics: new Map(),  // by service name: the object, the latest figures
  view: "", service: "",                     // the view shown, and its service
  revisions: new Map(), history: [],        // the service view's revisions and chart points
  brokers: new Map(), triggers: new Map(), sources: new Map(),
  can: {},                                   // "verb resource" → allowed, in the namespace
  streams: [],                               // AbortControllers of what the view follows
  logPaused: false, logQueue: [], logSkipped: 0, logTimer: null, logStream: null,
  builds: new Map(), build: "",              // the builds views' builds, and the one shown
  quotas: new Map(),                         // the namespace's ResourceQuotas
  feedStream: null,                          // the events view's feed of one broker
  namespaces: new Map(), namespacesStream: null,  // followed for the whole session
  logInstances: new Set(),                   // instances the service's log has shown
  usageWake: null,                           // reads the usage again now (a new window)
};
const $ = (id) => document.getElementById(id);
const serving = (ns) => `/apis/serving.knative.dev/v1/namespaces/${encodeURIComponent(ns)}`;
const elafros = (ns) => `/apis/elafros.dev/v1/namespaces/${encodeURIComponent(ns)}`;
const kMaxPoints = 120;  // two minutes of one-second figures
const kMaxLogLines = 500;

async function api(method, path, body, contentType) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = state.csrf;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                  credentials: "same-origin" });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  return { status: res.status, data };
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// Brings a table body to `rows` (fresh <tr>s, each with a data-key), keeping the rows and
// cells that did not change: focus, selection and a pointer over them survive the live
// updates, which come as often as once a second.
function syncRows(tbody, rows) {
  const old = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
  rows.forEach((tr, at) => {
    let cur = old.get(tr.dataset.key);
    if (cur && cur.children.length === tr.children.length) {
      old.delete(tr.dataset.key);
      const fresh = [...tr.children];
      fresh.forEach((td, i) => { if (cur.children[i].outerHTML !== td.outerHTML) cur.children[i].replaceWith(td); });
    } else {
      if (cur) { old.delete(tr.dataset.key); cur.remove(); }
      cur = tr;
    }
    if (tbody.children[at] !== cur) tbody.insertBefore(cur, tbody.children[at] || null);
  });
  for (const tr of old.values()) tr.remove();
}

function condition(object, type) {
  const conditions = (object && object.status && object.status.conditions) || [];
  return conditions.find((c) => c.type === type) || {};
}

function readyCell(object) {
  const ready = condition(object, "Ready");
  return el("td", { class: ready.status === "True" ? "ready-true" : ready.status === "False" ? "ready-false" : "" },
            ready.status || "Unknown");
}

function reasonText(object) {
  const ready = condition(object, "Ready");
  return ready.reason && ready.status !== "True" ? `${ready.reason}: ${ready.message || ""}` : "";
}

// --- views and navigation ----------------------------------------------------------------------

const kSections = ["signin", "services", "service", "events", "builds", "build", "usage", "audit"];

function show(section) {
  for (const s of kSections) $(s).hidden = s !== section;
  $("who").hidden = section === "signin";
  $("nav").hidden = section === "signin";
  for (const a of document.querySelectorAll("#nav a"))
    a.setAttribute("aria-current", a.dataset.view === state.view ? "page" : "false");
}

function stopStreams() {
  for (const c of state.streams) c.abort();
  state.streams = [];
}

// The view the location names: #/ (overview), #/services/NAME, #/events.
function route() {
  if (!state.csrf) return;
  stopStreams();
  const hash = location.hash.replace(/^#/, "") || "/";
  const service = hash.match(/^\/services\/([^/]+)$/);
  if (service) return openService(decodeURIComponent(service[1]));
  if (hash === "/events") return openEvents();
  const build = hash.match(/^\/builds\/([^/]+)$/);
  if (build) return openBuild(decodeURIComponent(build[1]));
  if (hash === "/builds") return openBuilds();
  if (hash === "/usage" && state.can["list usage"]) return openUsage();
  if (hash === "/audit" && state.can["list audit"]) return openAudit();
  openOverview();
}

async function start() {
  const me = await api("GET", "/ui/session");
  if (me.status === 200) return signedIn(me.data);
  show("signin");
  $("token").focus();
}

async function signedIn(session) {
  state.csrf = session.csrfToken;
  state.user = session.user;
  $("user").textContent = session.user;
  await loadPermissions();
  followNamespaces();
  route();
}

// The namespaces the user may list, for the namespace field's suggestions and the overview's
// list; followed for the whole session.
function followNamespaces() {
  if (state.namespacesStream) state.namespacesStream.abort();
  const controller = new AbortController();
  state.namespacesStream = controller;
  const sink = mapSink(state.namespaces, renderNamespaces);
  watchList("/api/v1/namespaces", "", sink, () => {}, controller);
}

function renderNamespaces() {
  const names = [...state.namespaces.keys()].sort();
  $("namespaces").replaceChildren(...names.map((n) => el("option", { value: n })));
  $("namespace-list").replaceChildren(...names.map((n) => {
    const b = el("button", { type: "button", class: n === state.namespace ? "current" : "" }, n);
    b.setAttribute("aria-pressed", n === state.namespace ? "true" : "false");
    b.onclick = () => { $("namespace").value = n; $("namespace").dispatchEvent(new Event("change")); };
    return el("li", {}, b);
  }));
  $("namespace-list").hidden = names.length === 0;
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signin-error").textContent = "";
  const r = await api("POST", "/ui/session", { token: $("token").value });
  $("token").value = "";
  if (r.status === 200) return signedIn(r.data);
  $("signin-error").textContent = (r.data && r.data.message) || `sign-in failed (HTTP ${r.status})`;
});

$("signout").addEventListener("click", async () => {
  stopStreams();
  if (state.namespacesStream) state.namespacesStream.abort();
  state.namespacesStream = null;
  state.namespaces.clear();
  await api("DELETE", "/ui/session");
  state.csrf = "";
  state.services.clear();
  renderServices();
  show("signin");
});

$("namespace").addEventListener("change", async () => {
  state.namespace = $("namespace").value.trim() || "default";
  renderNamespaces();
  await loadPermissions();
  if (state.view === "service") location.hash = "#/";
  else route();
});

window.addEventListener("hashchange", route);

// What the signed-in user may do in the namespace, from SelfSubjectAccessReviews: the page
// hides or disables the rest (the API refuses it anyway).
async function loadPermissions() {
  const asks = [["delete", "serving.knative.dev", "services"], ["patch", "serving.knative.dev", "services"],
                ["patch", "build.knative.dev", "builds"], ["list", "elafros.dev", "usage"], ["list", "elafros.dev", "audit"]];
  const answers = await Promise.all(asks.map(([verb, group, resource]) =>
    api("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
      apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview",
      spec: { resourceAttributes: { namespace: state.namespace, verb, group, resource } },
    })));
  state.can = {};
  asks.forEach(([verb, , resource], i) => {
    const a = answers[i];
    state.can[`${verb} ${resource}`] = a.status === 201 || a.status === 200 ? !!(a.data.status && a.data.status.allowed) : false;
  });
  $("nav-usage").hidden = !state.can["list usage"];
  $("nav-audit").hidden = !state.can["list audit"];
}

// --- streams -------------------------------------------------------------------------------------

// Reads a stream of JSON lines, calling onLine for each, until it ends or is aborted.
async function readLines(res, onLine) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line && onLine(JSON.parse(line)) === false) return;
    }
  }
}

function newStream() {
  const controller = new AbortController();
  state.streams.push(controller);
  return controller;
}

// Lists a collection, then follows its watch from that resourceVersion; a dropped stream
// resumes from the last one seen, and a 410 Gone lists again. `sink` gets reset(items),
// put(object) and remove(object); `status` how the stream is.
async function watchList(path, query, sink, status, own) {
  const controller = own || newStream();
  const sep = query ? `&${query}` : "";
  let version = "";
  while (!controller.signal.aborted) {
    try {
      if (!version) {
        const list = await api("GET", `${path}${query ? `?${query}` : ""}`);
        if (list.status !== 200) throw new Error((list.data && list.data.message) || `HTTP ${list.status}`);
        if (controller.signal.aborted) return;
        sink.reset(list.data.items || []);
        version = list.data.metadata.resourceVersion;
        status("live", "");
      }
      const res = await fetch(`${path}?watch=true&allowWatchBookmarks=true&resourceVersion=${version}${sep}`,
                              { signal: controller.signal, credentials: "same-origin", headers: { Accept: "application/json" } });
      if (res.status === 410) { version = ""; continue; }
      if (res.status !== 200) throw new Error(`watch: HTTP ${res.status}`);
      status("live", "");
      await readLines(res, (event) => {
        if (event.type === "ERROR") { version = ""; return false; }
        const o = event.object;
        if (o.metadata && o.metadata.resourceVersion) version = o.metadata.resourceVersion;
        if (event.type === "BOOKMARK") return true;
        if (event.type === "DELETED") sink.remove(o);
        else sink.put(o);
        return true;
      });
    } catch (e) {
      if (controller.signal.aborted) return;
      status("reconnecting", `lost the live view (${e.message}); reconnecting`);
    }
    if (controller.signal.aborted) return;
    status("reconnecting", "");
    await new Promise((r) => setTimeout(r, 1000));  // at most once a second
  }
}

function mapSink(map, render) {
  return {
    reset(items) { map.clear(); for (const o of items) map.set(o.metadata.name, o); render(); },
    put(o) { map.set(o.metadata.name, o); render(); },
    remove(o) { map.delete(o.metadata.name); render(); },
  };
}

// The servicemetrics stream of the namespace (or one service): a line a second.
async function followMetrics(service, onLine) {
  const controller = newStream();
  const query = `follow=true${service ? `&service=${encodeURIComponent(service)}` : ""}`;
  while (!controller.signal.aborted) {
    try {
      const res = await fetch(`${elafros(state.namespace)}/servicemetrics?${query}`,
                              { signal: controller.signal, credentials: "same-origin" });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      await readLines(res, (line) => { onLine(line); return true; });
    } catch (e) {
      if (controller.signal.aborted) return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// --- overview ------------------------------------------------------------------------------------

function openOverview() {
  state.view = "overview";
  show("services");
  watchList(`${serving(state.namespace)}/services`, "", mapSink(state.services, renderServices), (s, error) => {
    $("live").textContent = s;
    $("services-error").textContent = error;
  });
  followMetrics("", (line) => {
    state.metrics.clear();
    for (const s of line.services || []) state.metrics.set(s.name, s);
    renderServices();
  });
  state.quotas = new Map();
  watchList(`/api/v1/namespaces/${encodeURIComponent(state.namespace)}/resourcequotas`, "", mapSink(state.quotas, renderQuotas), () => {});
  followNode();
}

const mib = (bytes) => `${(bytes / 1048576).toFixed(0)} MiB`;

// The machine and what live instances are allotted of it, from the daemon's status (read every
// 5 s while the overview is open; hidden from roles that may not read it).
async function followNode() {
  const controller = newStream();
  while (!controller.signal.aborted) {
    const r = await api("GET", "/apis/elafros.dev/v1/status");
    if (controller.signal.aborted) return;
    const n = r.status === 200 && r.data.node;
    $("node-line").hidden = !n;
    if (n)
      $("node-line").textContent = `This machine: ${n.cpus} CPUs, ${mib(n.memoryBytes)}. Its ${r.data.readyInstances} ready ` +
        `instance(s) are allotted ${(n.allocatedCpuMillis / 1000).toFixed(2)} CPUs and ${mib(n.allocatedMemoryBytes)}` +
        `${n.unlimitedInstances ? ` (${n.unlimitedInstances} without a limit)` : ""}.`;
    await new Promise((res) => { setTimeout(res, 5000); controller.signal.addEventListener("abort", res); });
  }
}

function renderQuotas() {
  const rows = [];
  for (const q of [...state.quotas.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const hard = (q.status && q.status.hard) || (q.spec && q.spec.hard) || {};
    const used = (q.status && q.status.used) || {};
    for (const res of Object.keys(hard).sort()) {
      const share = quotaShare(used[res], hard[res]);
      const bar = el("progress", { max: 1, value: share === null ? 0 : Math.min(share, 1) });
      bar.setAttribute("aria-label", `${res}: ${used[res] || "0"} of ${hard[res]}`);
      rows.push(el("tr", { "data-key": `${q.metadata.name}/${res}`, "data-quota": q.metadata.name, "data-resource": res },
        el("td", {}, q.metadata.name), el("td", {}, res), el("td", { class: "num" }, used[res] || "0"),
        el("td", { class: "num" }, hard[res]), el("td", {}, bar)));
    }
  }
  syncRows($("quota-rows"), rows);
  $("quota-table").hidden = rows.length === 0;
  $("quota-empty").hidden = rows.length > 0;
}

// used / hard for Kubernetes quantities (2, 500m, 256Mi, 1G); null when either is unreadable.
function quotaShare(used, hard) {
  const units = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1048576, Gi: 1073741824, Ti: 1099511627776 };
  const value = (q) => {
    const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(String(q === undefined ? "0" : q));
    if (!m || (m[2] && !(m[2] in units))) return null;
    return Number(m[1]) * (m[2] ? units[m[2]] : 1);
  };
  const u = value(used), h = value(hard);
  return u === null || h === null || h === 0 ? null : u / h;
}

const fixed = (n, digits) => (typeof n === "number" ? n.toFixed(digits) : "–");

function renderServices() {
  const names = [...state.services.keys()].sort();
  syncRows($("service-rows"), names.map((name) => {
    const s = state.services.get(name);
    const m = state.metrics.get(name) || {};
    const url = (s.status && s.status.url) || "";
    return el("tr", { "data-key": name, "data-service": name },
      el("td", {}, el("a", { href: `#/services/${encodeURIComponent(name)}` }, name)),
      el("td", {}, url ? el("a", { href: url }, url) : ""),
      el("td", {}, (s.status && (s.status.latestReadyRevisionName || s.status.latestCreatedRevisionName)) || ""),
      readyCell(s),
      el("td", {}, reasonText(s)),
      el("td", { class: "num" }, m.name ? `${m.readyInstances} / ${m.desiredInstances}` : "–"),
      el("td", { class: "num" }, fixed(m.requestsPerSecond, 1)),
      el("td", { class: "num" }, fixed(m.errorsPerSecond, 1)),
      el("td", { class: "num" }, m.name ? String(m.coldStartsLastMinute) : "–"));
  }));
  $("services-empty").hidden = names.length > 0;
}

// --- the service view ----------------------------------------------------------------------------

function openService(name) {
  state.view = "service";
  state.service = name;
  state.history = [];
  state.revisions.clear();
  state.services.clear();
  show("service");
  state.logInstances = new Set();
  $("log-instance").replaceChildren(el("option", { value: "" }, "all"));
  $("service-title").textContent = name;
  $("action-result").textContent = "";
  $("act-delete").hidden = !state.can["delete services"];
  for (const id of ["act-update", "act-split", "act-rollback"]) {
    $(id).disabled = !state.can["patch services"];
    $(id).title = state.can["patch services"] ? "" : "your role may not change services here";
  }
  const status = (s, error) => { $("service-reason").textContent = error; };
  watchList(`${serving(state.namespace)}/services`, `fieldSelector=metadata.name%3D${encodeURIComponent(name)}`,
            mapSink(state.services, renderService), status);
  watchList(`${serving(state.namespace)}/revisions`,
            `labelSelector=serving.knative.dev%2Fservice%3D${encodeURIComponent(name)}`,
            mapSink(state.revisions, renderService), status);
  followMetrics(name, (line) => {
    const m = (line.services || []).find((s) => s.name === name) || { revisions: [] };
    state.history.push({ t: line.timeUnixMs, m });
    if (state.history.length > kMaxPoints) state.history.shift();
    renderCharts();
  });
  followLogs();
}

function currentService() { return state.services.get(state.service); }

// Revisions newest first.
function revisionList() {
  return [...state.revisions.values()].sort((a, b) =>
    (b.metadata.creationTimestamp || "").localeCompare(a.metadata.creationTimestamp || "") ||
    b.metadata.name.localeCompare(a.metadata.name));
}

function trafficOf(s) { return (s && s.status && s.status.traffic) || []; }

function renderService() {
  const s = currentService();
  if (!s) return;
  const ready = condition(s, "Ready");
  $("service-ready").textContent = ready.status === "True" ? "Ready" : `Ready: ${ready.status || "Unknown"}`;
  $("service-ready").className = ready.status === "True" ? "ready-true" : ready.status === "False" ? "ready-false" : "";
  const url = (s.status && s.status.url) || "";
  $("service-url").textContent = url;
  $("service-url").href = url || "#";
  $("service-reason").textContent = reasonText(s);

  // The traffic bar: one segment per target, its width its percent.
  const bar = $("traffic-bar");
  bar.replaceChildren();
  const tags = $("traffic-tags");
  tags.replaceChildren();
  const percentOf = new Map();
  trafficOf(s).forEach((t, i) => {
    const rev = t.revisionName || "";
    percentOf.set(rev, (percentOf.get(rev) || 0) + (t.percent || 0));
    if (t.percent > 0) {
      const seg = el("div", { class: `segment c${i % 6}`, "data-revision": rev, "data-percent": String(t.percent),
                              title: `${rev}: ${t.percent}%` }, `${rev}${t.tag ? ` (${t.tag})` : ""} ${t.percent}%`);
      seg.style.width = `${t.percent}%`;  // CSSOM, which the page's CSP allows (an attribute it would not)
      bar.append(seg);
    }
    if (t.tag)
      tags.append(el("li", {}, `${t.tag} → ${rev}: `, t.url ? el("a", { href: t.url }, t.url) : ""));
  });
  bar.setAttribute("aria-label", `Traffic split: ${trafficOf(s).map((t) => `${t.revisionName} ${t.percent}%`).join(", ")}`);

  const rows = [];
  const failures = $("failures");
  failures.replaceChildren();
  const select = $("log-revision");
  const names = ["", ...revisionList().map((r) => r.metadata.name)];
  if ([...select.options].map((o) => o.value).join(" ") !== names.join(" ")) {
    const chosen = select.value;
    select.replaceChildren(...names.map((n) => el("option", { value: n, selected: n === chosen }, n || "all")));
  }
  for (const r of revisionList()) {
    const name = r.metadata.name;
    const container = ((r.spec && r.spec.containers) || [])[0] || {};
    rows.push(el("tr", { "data-key": name, "data-revision": name },
      el("td", {}, name), el("td", {}, r.metadata.creationTimestamp || ""), el("td", {}, container.image || ""),
      readyCell(r), el("td", {}, reasonText(r)),
      el("td", { class: "num" }, `${percentOf.get(name) || 0}%`)));
    for (const c of (r.status && r.status.conditions) || [])
      if (c.status === "False")
        failures.append(el("li", {}, `${name}: ${c.type} ${c.reason || ""}${c.message ? ` — ${c.message}` : ""}`));
  }
  syncRows($("revision-rows"), rows);
  if (!failures.children.length) failures.append(el("li", { class: "help" }, "none"));
}

// A small line chart: every series over the chart's points, scaled to the largest value.
function lineChart(svg, legend, series) {
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const w = 300, h = 90, pad = 4;
  let max = 1;
  for (const s of series) for (const v of s.values) if (typeof v === "number" && v > max) max = v;
  for (const s of series) {
    const points = s.values.map((v, i) => {
      const x = pad + (w - 2 * pad) * (s.values.length <= 1 ? 1 : i / (kMaxPoints - 1));
      const y = h - pad - (h - 2 * pad) * ((typeof v === "number" ? v : 0) / max);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("class", s.cls);
    svg.append(line);
  }
  legend.replaceChildren(...series.map((s) => {
    const last = s.values[s.values.length - 1];
    return el("span", { class: `key ${s.cls}` }, `${s.name} ${fixed(last, s.digits)}`);
  }), el("span", { class: "help" }, ` max ${fixed(max, 1)}`));
}

function renderCharts() {
  const pts = state.history.map((p) => p.m);
  const series = (f) => pts.map(f);
  lineChart($("chart-rps"), $("legend-rps"), [{ name: "req/s", cls: "s0", digits: 1, values: series((m) => m.requestsPerSecond || 0) },
                                              { name: "errors/s", cls: "s1", digits: 1, values: series((m) => m.errorsPerSecond || 0) }]);
  lineChart($("chart-latency"), $("legend-latency"), [{ name: "p50", cls: "s0", digits: 1, values: series((m) => m.latencyP50Ms) },
                                                      { name: "p99", cls: "s1", digits: 1, values: series((m) => m.latencyP99Ms) }]);
  lineChart($("chart-instances"), $("legend-instances"), [{ name: "desired", cls: "s0", digits: 0, values: series((m) => m.desiredInstances || 0) },
                                                          { name: "ready", cls: "s1", digits: 0, values: series((m) => m.readyInstances || 0) }]);
  lineChart($("chart-cold"), $("legend-cold"), [{ name: "cold starts", cls: "s0", digits: 0, values: series((m) => m.coldStartsLastMinute || 0) },
                                                { name: "queued", cls: "s1", digits: 0, values: series((m) => m.queued || 0) }]);
  const last = pts[pts.length - 1];
  $("chart-rps").dataset.last = last ? String(last.requestsPerSecond || 0) : "0";
}

// --- logs ------------------------------------------------------------------------------------------

// Follows a JSON-lines stream: onStart before each (re)connection's first line, onLine for each,
// onState with how it goes; reconnects at most once a second until aborted, or until the
// stream ends when `untilEnd` (a finished build's log).
async function followStream(controller, path, { onStart, onLine, onState, untilEnd }) {
  while (!controller.signal.aborted) {
    try {
      const res = await fetch(path, { signal: controller.signal, credentials: "same-origin" });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      onState("following");
      let first = true;  // a reconnection's answer replaces what the last one showed
      await readLines(res, (line) => {
        if (first) { onStart(); first = false; }
        onLine(line);
        return true;
      });
      if (untilEnd && untilEnd()) { onState("ended"); return; }
    } catch (e) {
      if (controller.signal.aborted) return;
      onState(`reconnecting (${e.message})`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function followLogs() {
  const controller = newStream();
  state.logStream = controller;
  $("log-lines").replaceChildren();
  state.logQueue = [];
  state.logSkipped = 0;
  const revision = $("log-revision").value, instance = $("log-instance").value;
  const query = `follow=true&tailLines=100${revision ? `&revision=${encodeURIComponent(revision)}` : ""}` +
    `${instance ? `&instance=${encodeURIComponent(instance)}` : ""}`;
  followStream(controller, `${elafros(state.namespace)}/services/${encodeURIComponent(state.service)}/logs?${query}`, {
    onStart: () => $("log-lines").replaceChildren(),
    onLine: addLogLine,
    onState: (text) => { $("log-state").textContent = text; },
  });
}

function logMatches(li) {
  const filter = $("log-filter").value;
  return !filter || li.textContent.includes(filter);
}

// Lines are drawn in batches, at most 5 times a second, and only the latest kMaxLogLines of a
// batch: an app that logs every request under load cannot freeze the page.
function addLogLine(line) {
  noteInstance(line);
  state.logQueue.push(line);
  if (state.logQueue.length > kMaxLogLines) { state.logQueue.shift(); state.logSkipped++; }
  if (!state.logPaused && !state.logTimer) state.logTimer = setTimeout(flushLogs, 200);
}

// One log line as a list item; `source` is what wrote it (an instance, a build's step).
function logItem(line, source) {
  const stderr = line.stream === "stderr";
  const li = el("li", { class: stderr ? "stderr" : "" },
    el("time", {}, (line.time || "").replace(/^.*T/, "")), " ",
    el("span", { class: "src" }, source || `${line.instance || line.revision}${line.container ? `/${line.container}` : ""}`), " ",
    stderr ? el("span", { class: "badge", title: "written to stderr" }, "stderr") : null, stderr ? " " : null,
    el("span", { class: "msg" }, line.message));
  li.hidden = !logMatches(li);
  return li;
}

function flushLogs() {
  state.logTimer = null;
  if (state.logPaused) return;
  const list = $("log-lines");
  const follow = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  const batch = document.createDocumentFragment();
  if (state.logSkipped) batch.append(el("li", { class: "help" }, `… ${state.logSkipped} line(s) skipped (more than ${kMaxLogLines} at once)`));
  for (const line of state.logQueue) batch.append(logItem(line));
  state.logQueue = [];
  state.logSkipped = 0;
  list.append(batch);
  while (list.children.length > kMaxLogLines) list.firstElementChild.remove();
  if (follow) list.scrollTop = list.scrollHeight;
}

$("log-filter").addEventListener("input", () => {
  for (const li of $("log-lines").children) li.hidden = !logMatches(li);
});
$("log-pause").addEventListener("change", () => {
  state.logPaused = $("log-pause").checked;
  $("log-state").textContent = state.logPaused ? "paused" : "following";
  if (!state.logPaused) flushLogs();
});
// The instances the log has shown, to choose one from (newest last).
function noteInstance(line) {
  if (!line.instance || line.instance === "elafrosd" || state.logInstances.has(line.instance)) return;
  state.logInstances.add(line.instance);
  $("log-instance").append(el("option", { value: line.instance }, line.instance));
}

$("log-instance").addEventListener("change", () => $("log-revision").dispatchEvent(new Event("change")));
$("log-revision").addEventListener("change", () => {
  // Only the log stream restarts; the service's other streams go on.
  if (state.logStream) {
    state.logStream.abort();
    state.streams = state.streams.filter((c) => c !== state.logStream);
  }
  followLogs();
});

// --- actions, each with a confirm step --------------------------------------------------------

// Opens the dialog with a form; `review` returns {changes: [text], apply: async () => result}
// or throws an Error saying what to fix. The second press applies.
function openDialog(title, body, review) {
  const dialog = $("dialog");
  $("dialog-title").textContent = title;
  $("dialog-body").replaceChildren(...body);
  $("dialog-confirm").hidden = true;
  $("dialog-error").textContent = "";
  $("dialog-next").textContent = "Review";
  $("dialog-next").disabled = false;
  let pending = null;
  $("dialog-form").onsubmit = async (event) => {
    event.preventDefault();
    $("dialog-error").textContent = "";
    if (!pending) {
      try { pending = review(); } catch (e) { $("dialog-error").textContent = e.message; return; }
      $("dialog-changes").replaceChildren(...pending.changes.map((c) => el("li", {}, c)));
      $("dialog-confirm").hidden = false;
      $("dialog-next").textContent = "Confirm";
      for (const input of $("dialog-body").querySelectorAll("input,textarea")) input.disabled = true;
      $("dialog-next").focus();
      return;
    }
    $("dialog-next").disabled = true;
    const r = await pending.apply();
    $("dialog-next").disabled = false;
    if (r.status >= 200 && r.status < 300) {
      dialog.close();
      $(pending.resultId || "action-result").textContent = pending.done;
      return;
    }
    $("dialog-error").textContent = (r.data && r.data.message) || `the change was refused (HTTP ${r.status})`;
    pending = null;
    $("dialog-next").textContent = "Review";
    for (const input of $("dialog-body").querySelectorAll("input,textarea")) input.disabled = false;
  };
  $("dialog-cancel").onclick = () => dialog.close();
  dialog.showModal();
}

function servicePath() { return `${serving(state.namespace)}/services/${encodeURIComponent(state.service)}`; }
const mergePatch = (body) => api("PATCH", servicePath(), body, "application/merge-patch+json");

// Targets as a spec.traffic list: the revisions' percents, and every tag kept as it was (a
// revision, or the latest) at 0%, as 'elafros service rollback' keeps them.
function trafficSpec(percents, s) {
  const spec = [];
  for (const [rev, percent] of percents) if (percent > 0) spec.push({ revisionName: rev, percent });
  for (const t of (s.spec && s.spec.traffic) || []) if (t.tag) spec.push({ ...t, percent: 0 });
  return spec;
}

const describeTraffic = (list) => list.filter((t) => t.percent > 0).map((t) => `${t.revisionName} ${t.percent}%`).join(", ") || "none";

$("act-split").addEventListener("click", () => {
  const s = currentService();
  if (!s) return;
  const now = new Map();
  for (const t of trafficOf(s)) now.set(t.revisionName, (now.get(t.revisionName) || 0) + t.percent);
  const ready = revisionList().filter((r) => condition(r, "Ready").status === "True");
  const sum = el("p", { id: "split-sum", class: "help", role: "status" });
  const inputs = ready.map((r) => {
    const name = r.metadata.name;
    const range = el("input", { type: "range", min: 0, max: 100, step: 1, value: now.get(name) || 0, id: `split-range-${name}` });
    const number = el("input", { type: "number", min: 0, max: 100, step: 1, value: now.get(name) || 0, id: `split-${name}`,
                                 class: "split-percent", "data-revision": name });
    range.setAttribute("aria-label", `${name} percent`);
    range.oninput = () => { number.value = range.value; total(); };
    number.oninput = () => { range.value = number.value; total(); };
    return { name, number, row: el("div", { class: "split" }, el("label", { htmlFor: number.id }, name), range, number, "%") };
  });
  function total() {
    const n = inputs.reduce((a, i) => a + (Number(i.number.value) || 0), 0);
    sum.textContent = `Sum: ${n}%${n === 100 ? "" : " (must be 100)"}`;
    $("dialog-next").disabled = n !== 100;
    return n;
  }
  openDialog(`Split the traffic of ${state.service}`, [...inputs.map((i) => i.row), sum], () => {
    const n = total();
    if (n !== 100) throw new Error(`the percents add up to ${n}; make them 100`);
    const percents = inputs.map((i) => [i.name, Number(i.number.value)]);
    for (const [name, p] of percents)
      if (!Number.isInteger(p) || p < 0 || p > 100) throw new Error(`${name}: a percent is a whole number from 0 to 100`);
    const spec = trafficSpec(percents, s);
    return {
      changes: [`traffic of ${state.service}: ${describeTraffic(trafficOf(s))} → ${describeTraffic(spec)}`],
      apply: () => mergePatch({ spec: { traffic: spec } }),
      done: `Traffic of ${state.service} is now ${describeTraffic(spec)}.`,
    };
  });
  total();
});

$("act-rollback").addEventListener("click", () => {
  const s = currentService();
  if (!s) return;
  // The revision serving most now, and the newest Ready one created before it (as the CLI).
  let serving = "", most = -1;
  for (const t of trafficOf(s)) if (t.percent > most) { most = t.percent; serving = t.revisionName; }
  const older = revisionList().filter((r) => condition(r, "Ready").status === "True");
  const at = older.findIndex((r) => r.metadata.name === serving);
  const target = at >= 0 ? older[at + 1] : older[1];
  const body = [el("p", {}, target ? `Send 100% of the traffic to ${target.metadata.name}, the Ready revision before ${serving}.`
                                   : `No Ready revision older than ${serving || "the current one"} to roll back to.`)];
  openDialog(`Roll back ${state.service}`, body, () => {
    if (!target) throw new Error("there is no older Ready revision; roll back needs one that served");
    const spec = trafficSpec([[target.metadata.name, 100]], s);
    return {
      changes: [`traffic of ${state.service}: ${describeTraffic(trafficOf(s))} → ${target.metadata.name} 100%`],
      apply: () => mergePatch({ spec: { traffic: spec } }),
      done: `Rolled back: 100% of ${state.service}'s traffic goes to ${target.metadata.name}.`,
    };
  });
});

$("act-update").addEventListener("click", () => {
  const s = currentService();
  if (!s) return;
  const containers = JSON.parse(JSON.stringify((s.spec.template.spec && s.spec.template.spec.containers) || []));
  const main = containers.find((c) => c.ports && c.ports.length) || containers[0] || {};
  const image = el("input", { id: "update-image", value: main.image || "", size: 40 });
  const env = el("textarea", { id: "update-env", rows: 5, cols: 40,
                               value: (main.env || []).filter((e) => e.value !== undefined).map((e) => `${e.name}=${e.value}`).join("\n") });
  openDialog(`Update ${state.service}`, [
    el("label", { htmlFor: "update-image" }, "Image"), image,
    el("label", { htmlFor: "update-env" }, "Environment, one NAME=VALUE a line"), env,
    el("p", { class: "help" }, "A change makes a new revision, which takes the traffic that follows the latest."),
  ], () => {
    const img = image.value.trim();
    if (!img) throw new Error("the image is empty; name one, e.g. hello or registry/app@sha256:…");
    const vars = [];
    for (const [i, raw] of env.value.split("\n").entries()) {
      const line = raw.trim();
      if (!line) continue;
      const eq = line.indexOf("=");
      if (eq <= 0) throw new Error(`environment line ${i + 1} ("${line}") is not NAME=VALUE`);
      const name = line.slice(0, eq);
      if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) throw new Error(`environment line ${i + 1}: "${name}" is not a valid variable name`);
      vars.push({ name, value: line.slice(eq + 1) });
    }
    const changes = [];
    if (img !== main.image) changes.push(`image: ${main.image} → ${img}`);
    const before = new Map((main.env || []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    for (const v of vars) if (before.get(v.name) !== v.value) changes.push(`env ${v.name}: ${before.has(v.name) ? before.get(v.name) : "(unset)"} → ${v.value}`);
    for (const [name] of before) if (!vars.some((v) => v.name === name)) changes.push(`env ${name}: removed`);
    if (!changes.length) throw new Error("nothing changed; edit the image or the environment first");
    main.image = img;
    main.env = [...(main.env || []).filter((e) => e.value === undefined), ...vars];
    const template = { spec: { containers } };
    if (s.spec.template.metadata && s.spec.template.metadata.name) template.metadata = { name: null };
    return {
      changes: [...changes, "a new revision of " + state.service],
      apply: () => mergePatch({ spec: { template } }),
      done: `Updated ${state.service}: a new revision is on its way.`,
    };
  });
});

$("act-delete").addEventListener("click", () => {
  const name = state.service;
  openDialog(`Delete ${name}`, [el("p", {}, `Delete service ${name}, its revisions and its instances. This cannot be undone.`)], () => ({
    changes: [`service ${name} in ${state.namespace}: deleted, with every revision and instance`],
    apply: () => api("DELETE", servicePath()),
    done: `Deleted ${name}.`,
  }));
});

// --- events --------------------------------------------------------------------------------------

function openEvents() {
  state.view = "events";
  show("events");
  const ns = encodeURIComponent(state.namespace);
  const status = (s, error) => { $("feed-state").textContent = error || ""; };
  watchList(`/apis/eventing.knative.dev/v1/namespaces/${ns}/brokers`, "", mapSink(state.brokers, renderBrokers), status);
  watchList(`/apis/eventing.knative.dev/v1/namespaces/${ns}/triggers`, "", mapSink(state.triggers, renderTriggers), status);
  state.sources = new Map();
  for (const [plural, kind] of kSourceKinds) {
    // One map for every kind, keyed KIND/NAME: each watch resets only its own kind.
    const key = (o) => `${kind}/${o.metadata.name}`;
    const sink = {
      reset(items) {
        for (const k of [...state.sources.keys()]) if (k.startsWith(`${kind}/`)) state.sources.delete(k);
        for (const o of items) state.sources.set(key(o), { kind, o });
        renderSources();
      },
      put(o) { state.sources.set(key(o), { kind, o }); renderSources(); },
      remove(o) { state.sources.delete(key(o)); renderSources(); },
    };
    watchList(`/apis/sources.knative.dev/v1/namespaces/${ns}/${plural}`, "", sink, status);
  }
  state.feedStream = null;  // started once the brokers are listed
}

function sinkText(sink) {
  if (!sink) return "";
  // A ref with a uri: the uri is a path on the ref's address (Knative's rule).
  if (sink.ref) return `${sink.ref.kind} ${sink.ref.name}${sink.uri || ""}`;
  return sink.uri || "";
}

function renderBrokers() {
  syncRows($("broker-rows"), [...state.brokers.values()].map((b) =>
    el("tr", { "data-key": b.metadata.name, "data-broker": b.metadata.name }, el("td", {}, b.metadata.name),
       el("td", {}, (b.status && b.status.address && b.status.address.url) || ""), readyCell(b),
       el("td", {}, sinkText(b.spec && b.spec.delivery && b.spec.delivery.deadLetterSink)))));
  const select = $("feed-broker");
  const chosen = select.value;
  const names = [...state.brokers.keys()].sort();
  if ([...select.options].map((o) => o.value).join(" ") !== names.join(" "))
    select.replaceChildren(...names.map((n) => el("option", { value: n, selected: n === chosen }, n)));
  if (select.value !== chosen || (select.value && !state.feedStream)) followFeed();
}

function renderTriggers() {
  syncRows($("trigger-rows"), [...state.triggers.values()].map((t) => {
    const attrs = (t.spec.filter && t.spec.filter.attributes) || {};
    const filter = Object.entries(attrs).map(([k, v]) => `${k}=${v}`).join(", ") || "(every event)";
    return el("tr", { "data-key": t.metadata.name, "data-trigger": t.metadata.name }, el("td", {}, t.metadata.name), el("td", {}, t.spec.broker || "default"),
              el("td", {}, filter), el("td", {}, sinkText(t.spec.subscriber)), readyCell(t));
  }));
}

const kSourceKinds = [["pingsources", "PingSource"], ["containersources", "ContainerSource"],
                      ["apiserversources", "ApiServerSource"], ["sinkbindings", "SinkBinding"]];

function renderSources() {
  const list = [...state.sources.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  syncRows($("source-rows"), list.map(([key, { kind, o }]) => {
    const spec = o.spec || {};
    const schedule = spec.schedule ? `${spec.schedule}${spec.timezone ? ` (${spec.timezone})` : ""}` : "";
    return el("tr", { "data-key": key, "data-source": o.metadata.name }, el("td", {}, o.metadata.name), el("td", {}, kind),
              el("td", {}, schedule), el("td", {}, sinkText(spec.sink)), readyCell(o));
  }));
}

// The broker's events, followed: the daemon sends the list again whenever it changes.
function followFeed() {
  if (state.feedStream) {
    state.feedStream.abort();
    state.streams = state.streams.filter((c) => c !== state.feedStream);
    state.feedStream = null;
  }
  const broker = $("feed-broker").value;
  if (!broker) return;
  const controller = newStream();
  state.feedStream = controller;
  followStream(controller, `${elafros(state.namespace)}/brokers/${encodeURIComponent(broker)}/events?limit=50&follow=true`, {
    onStart: () => {},
    onLine: (line) => renderFeed(line.items || []),
    onState: (text) => { $("feed-state").textContent = text === "following" ? "live" : text; },
  });
}

$("feed-broker").addEventListener("change", followFeed);

// An event's data as the feed got it: its text (or base64), cut at 120 characters here.
function dataCell(e) {
  if (e.data === undefined && e.dataBase64 === undefined) return el("td", { class: "help" }, "no data");
  const text = e.data !== undefined ? e.data : `base64: ${e.dataBase64}`;
  const more = e.dataTruncated ? ` … (${e.dataBytes} bytes)` : "";
  return el("td", { class: "data", title: text }, text.length > 120 ? `${text.slice(0, 120)}…${more}` : `${text}${more}`);
}

function renderFeed(items) {
  const rows = [], dead = [];
  for (const e of items) {
    const a = e.attributes || {};
    const deliveries = (e.deliveries || []).map((d) =>
      el("span", { class: `delivery ${d.state}`, "data-trigger": d.trigger }, `${d.trigger}: ${d.state}${d.lastCode ? ` (${d.lastCode})` : ""}`));
    rows.push(el("tr", { "data-key": String(e.sequence), "data-event": a.id || "" }, el("td", {}, e.received), el("td", {}, a.type || ""), el("td", {}, a.source || ""),
                 el("td", {}, a.id || ""), el("td", {}, ...(deliveries.length ? deliveries : ["no trigger matched"]))));
    for (const d of e.deliveries || [])
      if (d.state !== "delivered" && d.state !== "pending")
        dead.push(el("tr", { "data-key": `${e.sequence}/${d.trigger}` }, el("td", {}, a.id || ""), el("td", {}, d.trigger), el("td", {}, d.state), el("td", { class: "num" }, String(d.lastCode || "")),
                     el("td", {}, d.lastError || ""), dataCell(e)));
  }
  syncRows($("feed-rows"), rows);
  syncRows($("dead-rows"), dead);
}

// --- builds --------------------------------------------------------------------------------------

const buildsPath = () => `/apis/build.knative.dev/v1alpha1/namespaces/${encodeURIComponent(state.namespace)}/builds`;

function buildSucceeded(b) { return condition(b, "Succeeded"); }

function openBuilds() {
  state.view = "builds";
  show("builds");
  state.builds = new Map();
  watchList(buildsPath(), "", mapSink(state.builds, renderBuilds), () => {});
}

function renderBuilds() {
  const list = [...state.builds.values()].sort((a, b) =>
    (b.metadata.creationTimestamp || "").localeCompare(a.metadata.creationTimestamp || "") || a.metadata.name.localeCompare(b.metadata.name));
  syncRows($("build-rows"), list.map((b) => {
    const c = buildSucceeded(b);
    const st = b.status || {};
    return el("tr", { "data-key": b.metadata.name, "data-build": b.metadata.name },
      el("td", {}, el("a", { href: `#/builds/${encodeURIComponent(b.metadata.name)}` }, b.metadata.name)),
      el("td", {}, st.startTime || ""),
      el("td", { class: c.status === "True" ? "ready-true" : c.status === "False" ? "ready-false" : "" }, c.status || "Unknown"),
      el("td", {}, c.reason ? `${c.reason}${c.message ? `: ${c.message}` : ""}` : ""),
      el("td", { class: "num" }, `${(st.stepsCompleted || []).length} / ${((b.spec && b.spec.steps) || []).length || (st.stepStates || []).length}`));
  }));
  $("builds-empty").hidden = list.length > 0;
}

function openBuild(name) {
  state.view = "build";
  state.build = name;
  state.builds = new Map();
  show("build");
  $("build-title").textContent = `Build ${name}`;
  $("build-result").textContent = "";
  $("build-log").replaceChildren();
  $("act-cancel").hidden = !state.can["patch builds"];
  watchList(buildsPath(), `fieldSelector=metadata.name%3D${encodeURIComponent(name)}`, mapSink(state.builds, renderBuild), () => {});
  const controller = newStream();
  const over = () => { const b = state.builds.get(name); const c = buildSucceeded(b); return c.status === "True" || c.status === "False"; };
  followStream(controller, `${elafros(state.namespace)}/builds/${encodeURIComponent(name)}/logs?follow=true`, {
    onStart: () => $("build-log").replaceChildren(),
    onLine: (line) => {
      const list = $("build-log");
      list.append(logItem(line, line.step));
      while (list.children.length > kMaxLogLines) list.firstElementChild.remove();
      list.scrollTop = list.scrollHeight;
    },
    onState: () => {},
    untilEnd: over,
  });
}

function renderBuild() {
  const b = state.builds.get(state.build);
  if (!b) return;
  const c = buildSucceeded(b);
  const over = c.status === "True" || c.status === "False";
  $("build-state").textContent = over ? (c.status === "True" ? "Succeeded" : "Failed") : "Running";
  $("build-state").className = c.status === "True" ? "ready-true" : c.status === "False" ? "ready-false" : "";
  $("build-reason").textContent = c.reason ? `${c.reason}${c.message ? `: ${c.message}` : ""}` : "";
  $("act-cancel").disabled = over;
  const states = (b.status && b.status.stepStates) || [];
  const steps = ((b.spec && b.spec.steps) || []).map((st) => st.name);
  for (const st of states) if (!steps.includes(st.name)) steps.push(st.name);
  syncRows($("step-rows"), steps.map((name) => {
    const st = states.find((x) => x.name === name) || {};
    const t = st.terminated;
    const phase = t ? (t.exitCode === 0 ? "done" : "failed") : st.running ? "running" : "waiting";
    return el("tr", { "data-key": name, "data-step": name },
      el("td", {}, name),
      el("td", { class: phase === "done" ? "ready-true" : phase === "failed" ? "ready-false" : "" }, phase),
      el("td", { class: "num" }, t ? String(t.exitCode) : ""),
      el("td", { class: "num" }, st.duration || ""));
  }));
}

$("act-cancel").addEventListener("click", () => {
  const name = state.build;
  openDialog(`Cancel build ${name}`, [el("p", {}, `Stop build ${name}: its running step is killed and the steps after it do not run.`)], () => ({
    changes: [`build ${name} in ${state.namespace}: cancelled (BuildCancelled)`],
    apply: () => api("PATCH", `${buildsPath()}/${encodeURIComponent(name)}`, { spec: { status: "BuildCancelled" } }, "application/merge-patch+json"),
    done: `Cancelled ${name}.`,
    resultId: "build-result",
  }));
});

// --- usage ---------------------------------------------------------------------------------------

function usageQuery(format) {
  const q = new URLSearchParams({ since: $("usage-window").value, by: $("usage-by").value, namespace: state.namespace });
  if (format) q.set("format", format);
  return `/apis/elafros.dev/v1/usage?${q}`;
}

// Usage is accounted in hourly buckets: read again every 10 s while the view is open.
async function openUsage() {
  state.view = "usage";
  show("usage");
  const controller = newStream();
  while (!controller.signal.aborted) {
    $("usage-csv").href = usageQuery("csv");
    const r = await api("GET", usageQuery());
    if (controller.signal.aborted) return;
    if (r.status === 200) { renderUsage(r.data.items || []); $("usage-state").textContent = `as of ${new Date().toLocaleTimeString()}`; }
    else $("usage-state").textContent = (r.data && r.data.message) || `HTTP ${r.status}`;
    await new Promise((res) => {
      state.usageWake = res;
      setTimeout(res, 10000);
      controller.signal.addEventListener("abort", res);
    });
  }
}

for (const id of ["usage-window", "usage-by"]) $(id).addEventListener("change", () => { if (state.usageWake) state.usageWake(); });

const kUsageSums = ["requests", "errors_5xx", "cold_starts", "instance_seconds", "active_seconds", "cpu_seconds_used",
                    "gib_seconds_used", "build_seconds", "events_delivered"];

function renderUsage(items) {
  // The window's hourly buckets summed per row; peak memory is the window's peak.
  const rows = new Map();
  for (const it of items) {
    const key = `${it.namespace}/${it.service}/${it.revision}`;
    const r = rows.get(key) || { namespace: it.namespace, service: it.service, revision: it.revision, peak_memory_bytes: 0 };
    for (const k of kUsageSums) r[k] = (r[k] || 0) + (it[k] || 0);
    r.peak_memory_bytes = Math.max(r.peak_memory_bytes, it.peak_memory_bytes || 0);
    rows.set(key, r);
  }
  const num = (v, digits) => el("td", { class: "num" }, fixed(v, digits));
  syncRows($("usage-rows"), [...rows.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([key, r]) =>
    el("tr", { "data-key": key, "data-usage": r.service || r.namespace },
      el("td", {}, r.namespace), el("td", {}, r.service), el("td", {}, r.revision),
      num(r.requests, 0), num(r.errors_5xx, 0), num(r.cold_starts, 0), num(r.instance_seconds, 1), num(r.active_seconds, 1),
      num(r.cpu_seconds_used, 2), num(r.gib_seconds_used, 3), el("td", { class: "num" }, `${(r.peak_memory_bytes / 1048576).toFixed(1)} MiB`),
      num(r.build_seconds, 1), num(r.events_delivered, 0))));
}

// --- audit ---------------------------------------------------------------------------------------

const kAuditShown = 500;

async function openAudit() {
  state.view = "audit";
  show("audit");
  const q = new URLSearchParams();
  for (const [k, id] of [["user", "audit-user"], ["verb", "audit-verb"], ["since", "audit-since"]])
    if ($(id).value.trim()) q.set(k, $(id).value.trim());
  const [records, chain] = await Promise.all([api("GET", `/apis/elafros.dev/v1/audit?${q}`), api("GET", "/apis/elafros.dev/v1/audit/verify")]);
  $("audit-error").textContent = records.status === 200 ? "" : (records.data && records.data.message) || `HTTP ${records.status}`;
  if (chain.status === 200) {
    const c = chain.data;
    $("audit-chain").textContent = c.ok ? `Chain intact: ${c.records} records, head ${String(c.head).slice(0, 12)}…` : `Chain broken: ${c.problem}`;
    $("audit-chain").className = c.ok ? "ready-true" : "ready-false";
  }
  const items = records.status === 200 ? (records.data.items || []) : [];
  const newest = items.slice(-kAuditShown).reverse();
  syncRows($("audit-rows"), newest.map((e) => {
    const ref = e.objectRef || {};
    const code = (e.responseStatus && e.responseStatus.code) || "";
    return el("tr", { "data-key": e.auditID, "data-verb": e.verb || "", "data-name": ref.name || "" },
      el("td", {}, e.requestReceivedTimestamp || ""), el("td", {}, (e.user && e.user.username) || ""), el("td", {}, e.verb || ""),
      el("td", {}, ref.resource ? `${ref.resource}${ref.subresource ? `/${ref.subresource}` : ""}` : e.requestURI || ""),
      el("td", {}, ref.namespace || ""), el("td", {}, ref.name || ""),
      el("td", { class: code >= 400 ? "num ready-false" : "num" }, String(code)), el("td", {}, (e.sourceIPs || []).join(", ")));
  }));
}

$("audit-filter").addEventListener("submit", (event) => { event.preventDefault(); openAudit(); });

start();
