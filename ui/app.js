// The elafros dashboard: plain JavaScript against the daemon's own API. The session is an
// HttpOnly cookie set by POST /ui/session; every change carries the X-CSRF-Token it returned.
// Lists come from the API and stay live through its watch streams (no polling).
"use strict";

const state = { csrf: "", namespace: "default", services: new Map(), watch: null };
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = state.csrf;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                  credentials: "same-origin" });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  return { status: res.status, data };
}

function show(section) {
  $("signin").hidden = section !== "signin";
  $("services").hidden = section !== "services";
  $("who").hidden = section === "signin";
}

async function start() {
  const me = await api("GET", "/ui/session");
  if (me.status === 200) return signedIn(me.data);
  show("signin");
  $("token").focus();
}

function signedIn(session) {
  state.csrf = session.csrfToken;
  $("user").textContent = session.user;
  show("services");
  follow();
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
  stopWatch();
  await api("DELETE", "/ui/session");
  state.csrf = "";
  state.services.clear();
  render();
  show("signin");
});

$("namespace").addEventListener("change", () => {
  state.namespace = $("namespace").value.trim() || "default";
  follow();
});

function condition(service, type) {
  const conditions = (service.status && service.status.conditions) || [];
  return conditions.find((c) => c.type === type) || {};
}

function render() {
  const rows = $("service-rows");
  rows.replaceChildren();
  const names = [...state.services.keys()].sort();
  for (const name of names) {
    const s = state.services.get(name);
    const ready = condition(s, "Ready");
    const tr = document.createElement("tr");
    tr.dataset.service = name;
    const cell = (text) => { const td = document.createElement("td"); td.textContent = text || ""; tr.append(td); return td; };
    cell(name);
    const url = (s.status && s.status.url) || "";
    const link = cell("");
    if (url) { const a = document.createElement("a"); a.href = url; a.textContent = url; link.append(a); }
    cell((s.status && (s.status.latestReadyRevisionName || s.status.latestCreatedRevisionName)) || "");
    const r = cell(ready.status || "Unknown");
    r.className = ready.status === "True" ? "ready-true" : ready.status === "False" ? "ready-false" : "";
    cell(ready.reason ? `${ready.reason}: ${ready.message || ""}` : "");
    rows.append(tr);
  }
  $("services-empty").hidden = names.length > 0;
}

function stopWatch() {
  if (state.watch) state.watch.abort();
  state.watch = null;
}

// Lists the namespace's services, then follows the watch from that resourceVersion; a dropped
// stream resumes from the last one seen, and a 410 Gone lists again.
async function follow() {
  stopWatch();
  const controller = new AbortController();
  state.watch = controller;
  const base = `/apis/serving.knative.dev/v1/namespaces/${encodeURIComponent(state.namespace)}/services`;
  let version = "";
  while (state.watch === controller) {
    try {
      if (!version) {
        const list = await api("GET", base);
        if (list.status !== 200) throw new Error((list.data && list.data.message) || `HTTP ${list.status}`);
        state.services.clear();
        for (const s of list.data.items || []) state.services.set(s.metadata.name, s);
        version = list.data.metadata.resourceVersion;
        render();
        $("services-error").textContent = "";
      }
      $("live").textContent = "live";
      const res = await fetch(`${base}?watch=true&resourceVersion=${version}`,
                              { signal: controller.signal, credentials: "same-origin", headers: { Accept: "application/json" } });
      if (res.status === 410) { version = ""; continue; }
      if (res.status !== 200) throw new Error(`watch: HTTP ${res.status}`);
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let pending = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, newline).trim();
          pending = pending.slice(newline + 1);
          if (!line) continue;
          const event = JSON.parse(line);
          if (event.type === "ERROR") { version = ""; break; }
          const s = event.object;
          if (s.metadata && s.metadata.resourceVersion) version = s.metadata.resourceVersion;
          if (event.type === "BOOKMARK") continue;
          if (event.type === "DELETED") state.services.delete(s.metadata.name);
          else state.services.set(s.metadata.name, s);
          render();
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
      $("services-error").textContent = `lost the live view (${e.message}); reconnecting`;
    }
    $("live").textContent = "reconnecting";
    await new Promise((r) => setTimeout(r, 1000));  // at most once a second
  }
}

start();
