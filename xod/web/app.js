// xod's dashboard: sign-in, then live views fed by xod.subscribe (live.js). Preact + htm,
// no build step. Every view renders from the collections' maps; the collections call the
// render at most once per animation frame (Live.changed).

import { h, render } from "./vendor/preact.module.js";
import { useEffect, useMemo, useRef, useState } from "./vendor/preact-hooks.module.js";
import htm from "./vendor/htm.module.js";
import { Live } from "./live.js";
import { Charts, Sampler, StatsCharts } from "./charts.js";
import { VmTable } from "./table.js";
import { actsOnEverything, granted } from "./access.js";

const html = htm.bind(h);

export const VIEWS = [
  ["tree", "Pools"],
  ["vms", "VMs"],
  ["hosts", "Hosts"],
  ["srs", "Storage"],
  ["tasks", "Tasks"],
  ["messages", "Messages"],
  ["charts", "Charts"],
];
const VM_TYPE = "type:/^VM$/";
const VM_FIELDS = [
  "name_label",
  "power_state",
  "$container",
  "$pool",
  "CPUs.number",
  "memory.size",
  "addresses",
  "tags",
];
// How often the user's ACLs are read again (as xo-web does): a grant shows within this time.
const GRANTS_POLL_MS = 5000;
const MESSAGES_SHOWN = 50;

// -- formatting --------------------------------------------------------------------------------

export function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  const i = Math.min(units.length - 1, Math.floor(Math.log2(n) / 10));
  return `${(n / 1024 ** i).toFixed(i ? 1 : 0)} ${units[i]}`;
}

function percent(part, whole) {
  return whole ? Math.min(100, Math.round((100 * part) / whole)) : 0;
}

function time(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleTimeString() : "";
}

// -- URL: the view and the filter, so a view can be bookmarked ---------------------------------

function readRoute() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const view = VIEWS.some(([name]) => name === path) ? path : "vms";
  return { view, filter: new URLSearchParams(query).get("q") || "" };
}

function writeRoute({ view, filter }) {
  const query = filter ? `?${new URLSearchParams({ q: filter })}` : "";
  const hash = `#/${view}${query}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

// -- the live state -----------------------------------------------------------------------------

function useLive(session, onSignedOut) {
  const [status, setStatus] = useState("connecting");
  const [, setTick] = useState(0);
  const live = useMemo(() => {
    const live = new Live({ onStatus: setStatus, onSignedOut });
    live.vms = live.collection("vms", { filter: VM_TYPE, fields: VM_FIELDS });
    // Everything else from one subscription, split by type.
    const infra = live.collection("infra", {
      filter: "type:/^(pool|host|SR|task|message)$/",
      // prettier-ignore
      fields: [
        "type", "name_label", "$pool",
        // hosts
        "enabled", "power_state", "memory.size", "memory.usage", "address",
        "otherConfig.MAINTENANCE_MODE",
        // pools, SRs
        "master", "SR_type", "size", "physical_usage",
        // tasks, messages
        "progress", "status", "created", "finished", "name", "body", "time", "$object",
      ],
      types: ["pool", "host", "SR", "task", "message"],
    });
    live.pools = infra.view("pool");
    live.hosts = infra.view("host");
    live.srs = infra.view("SR");
    live.tasks = infra.view("task");
    live.messages = infra.view("message");
    return live;
  }, []);
  useEffect(() => {
    const listener = () => setTick((t) => t + 1);
    live.listeners.add(listener);
    live.start(session);
    return () => {
      live.listeners.delete(listener);
      live.stop();
    };
  }, [live]);
  return [live, status];
}

/** The user's ACL grants (acl.getCurrentPermissions), read while live; none needed by the
 * levels that act on everything. */
function useGrants(live, user, status) {
  const [grants, setGrants] = useState({});
  useEffect(() => {
    if (status !== "live" || actsOnEverything(user.permission)) return undefined;
    let stopped = false;
    const read = () =>
      live.call("acl.getCurrentPermissions").then(
        (answer) => stopped || setGrants(answer),
        () => {},
      );
    read();
    const timer = setInterval(read, GRANTS_POLL_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [live, user.permission, status]);
  return grants;
}

/** An object the dashboard holds, with its type (what `granted` follows). */
function objectOf(live, id) {
  const vm = live.vms.items.get(id);
  if (vm !== undefined) return { ...vm, type: "VM" };
  for (const view of [live.hosts, live.pools, live.srs]) {
    const object = view.items.get(id);
    if (object !== undefined) return object;
  }
  return undefined;
}

// -- sign-in ------------------------------------------------------------------------------------

function SignIn({ onSignedIn }) {
  const [mode, setMode] = useState("password");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    const body =
      mode === "token"
        ? { token: form.get("token") }
        : { email: form.get("email"), password: form.get("password") };
    setBusy(true);
    setError("");
    try {
      const response = await fetch("/signin", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.error || `sign-in failed (${response.status})`);
      onSignedIn(answer);
    } catch (failure) {
      setError(failure.message);
    } finally {
      setBusy(false);
    }
  }
  return html`
    <main class="signin">
      <h1>xod</h1>
      <form onSubmit=${submit} aria-describedby="signin-error">
        <fieldset>
          <legend>Sign in with</legend>
          <label><input type="radio" name="mode" checked=${mode === "password"}
            onChange=${() => setMode("password")} /> email and password</label>
          <label><input type="radio" name="mode" checked=${mode === "token"}
            onChange=${() => setMode("token")} /> API token</label>
        </fieldset>
        ${mode === "password"
          ? html`<label>Email <input name="email" type="text" autocomplete="username" required /></label>
              <label>Password <input name="password" type="password" autocomplete="current-password"
                required /></label>`
          : html`<label>Token <input name="token" type="password" autocomplete="off" required /></label>`}
        <button type="submit" disabled=${busy}>Sign in</button>
        <p id="signin-error" class="error" role="alert">${error}</p>
      </form>
    </main>`;
}

// -- views ----------------------------------------------------------------------------------------

function PowerBadge({ state }) {
  return html`<span class="badge power-${(state || "unknown").toLowerCase()}">${state}</span>`;
}

function UsageBar({ used, total, label }) {
  const value = percent(used, total);
  return html`<span class="usage" role="meter" aria-label=${label} aria-valuemin="0"
    aria-valuemax="100" aria-valuenow=${value} title=${`${bytes(used)} of ${bytes(total)}`}>
    <span class="usage-fill" style=${`width:${value}%`}></span>
    <span class="usage-text">${value}% · ${bytes(used)} / ${bytes(total)}</span></span>`;
}

function Tree({ live, select }) {
  const byPool = new Map();
  for (const [id, host] of live.hosts.items) {
    if (!byPool.has(host.$pool)) byPool.set(host.$pool, []);
    byPool.get(host.$pool).push([id, host]);
  }
  const vmsOf = new Map();
  for (const [id, vm] of live.vms.items) {
    const key = vm.$container;
    if (!vmsOf.has(key)) vmsOf.set(key, []);
    vmsOf.get(key).push([id, vm]);
  }
  const shown = 100;
  const vmList = (entries) => html`<ul>
    ${entries.slice(0, shown).map(
      ([id, vm]) => html`<li key=${id}><button class="link" onClick=${() => select(id)}>
        ${vm.name_label}</button> <${PowerBadge} state=${vm.power_state} /></li>`,
    )}
    ${entries.length > shown ? html`<li>… ${entries.length - shown} more in the VM table</li>` : null}
  </ul>`;
  return html`<section aria-label="Pools, hosts and VMs" class="tree">
    ${[...live.pools.items].map(([poolId, pool]) => {
      const hosts = byPool.get(poolId) || [];
      const halted = vmsOf.get(poolId) || []; // a halted VM without affinity: in its pool
      return html`<details open key=${poolId}>
        <summary><strong>${pool.name_label}</strong> · ${hosts.length} hosts</summary>
        ${hosts.map(([hostId, host]) => {
          const vms = vmsOf.get(hostId) || [];
          return html`<details key=${hostId}>
            <summary>${host.name_label} · ${vms.length} VMs</summary>${vmList(vms)}</details>`;
        })}
        <details><summary>on no host · ${halted.length} VMs</summary>${vmList(halted)}</details>
      </details>`;
    })}
  </section>`;
}

function Search({ value, onChange, error }) {
  const [text, setText] = useState(value);
  useEffect(() => setText(value), [value]);
  const entry = error?.data?.errors?.[0];
  const position = entry?.params?.position;
  return html`<form class="search" role="search" onSubmit=${(e) => {
      e.preventDefault();
      onChange(text.trim());
    }}>
    <label for="search">Filter (complex-matcher)</label>
    <input id="search" type="search" value=${text} placeholder="power_state:Running tags:prod"
      aria-invalid=${error ? "true" : "false"} aria-describedby="search-error"
      onInput=${(e) => setText(e.target.value)} />
    <button type="submit">Apply</button>
    <p id="search-error" class="error" role="alert">
      ${error
        ? html`${(entry?.message || error.message).replace(/( at position \d+)+$/, "")}${position !== undefined
            ? html` at position <strong>${position}</strong>: <code class="caret">${text.slice(0, position)}<mark>${text.slice(position, position + 1) || " "}</mark>${text.slice(position + 1)}</code>`
            : null}`
        : null}
    </p>
  </form>`;
}

/** The user's filter within the VM subscription. */
function vmFilter(filter) {
  return filter ? `${VM_TYPE} (${filter})` : VM_TYPE;
}

// Only the buttons of actions xod would accept from this user (`may`, xod/web/access.js).
function Actions({ kind, id, object, notify, may }) {
  const run = (method, params = {}, label = method) => notify(method, label, { id, ...params });
  if (kind === "vm") {
    const state = object.power_state;
    const operate = may(id, "operate");
    const administrate = may(id, "administrate");
    if (!operate && !administrate) return null;
    return html`<div class="actions" role="group" aria-label=${`Actions on ${object.name_label}`}>
      ${operate
        ? html`<button disabled=${state === "Running"} onClick=${() => run("vm.start")}>Start</button>
      <button disabled=${state !== "Running"} onClick=${() => run("vm.stop")}>Stop</button>
      <button disabled=${state !== "Running"} onClick=${() => run("vm.restart")}>Restart</button>
      <button disabled=${state !== "Running"} onClick=${() => run("vm.suspend")}>Suspend</button>
      <button onClick=${() => run("vm.snapshot", { name: `${object.name_label} snapshot` })}>
        Snapshot</button>`
        : null}
      ${administrate
        ? html`<button onClick=${() => run("vm.clone", { name: `${object.name_label} clone` })}>
        Clone</button>`
        : null}
    </div>`;
  }
  if (!may(id, "administrate")) return null;
  return html`<div class="actions" role="group" aria-label=${`Actions on ${object.name_label}`}>
    ${object.enabled
      ? html`<button onClick=${() => run("host.disable")}>Disable</button>`
      : html`<button onClick=${() => run("host.enable")}>Enable</button>`}
    <button onClick=${() =>
      run("host.setMaintenanceMode", { maintenance: object.enabled }, "host maintenance")}>
      ${object.enabled ? "Enter maintenance" : "Leave maintenance"}</button>
  </div>`;
}

function VmDetails({ live, id, notify, may, close, sampler }) {
  const vm = live.vms.items.get(id);
  if (!vm) return null;
  const host = live.hosts.items.get(vm.$container);
  return html`<aside class="details" aria-label=${`VM ${vm.name_label}`}>
    <header><h2>${vm.name_label}</h2>
      <button class="close" aria-label="Close the details" onClick=${close}>×</button></header>
    <p><${PowerBadge} state=${vm.power_state} />${` on ${host ? host.name_label : "no host"} · ${
      vm.CPUs?.number} CPUs · ${bytes(vm.memory?.size)}`}</p>
    <${Actions} kind="vm" id=${id} object=${vm} notify=${notify} may=${may} />
    <${StatsCharts} live=${live} sampler=${sampler} kind="vm" id=${id} />
  </aside>`;
}

function HostDetails({ live, id, notify, may, close, sampler }) {
  const host = live.hosts.items.get(id);
  if (!host) return null;
  return html`<aside class="details" aria-label=${`Host ${host.name_label}`}>
    <header><h2>${host.name_label}</h2>
      <button class="close" aria-label="Close the details" onClick=${close}>×</button></header>
    <p>${host.address} · ${host.enabled ? "enabled" : "disabled"}</p>
    <${Actions} kind="host" id=${id} object=${host} notify=${notify} may=${may} />
    <${StatsCharts} live=${live} sampler=${sampler} kind="host" id=${id} />
  </aside>`;
}

function Hosts({ live, notify, may, select }) {
  const hosts = [...live.hosts.items].sort((a, b) => (a[1].name_label < b[1].name_label ? -1 : 1));
  const mayAct = hosts.some(([id]) => may(id, "administrate"));
  return html`<table class="grid"><caption>Hosts</caption>
    <thead><tr><th scope="col">Name</th><th scope="col">State</th><th scope="col">Memory</th>
      <th scope="col">Address</th>${mayAct ? html`<th scope="col">Actions</th>` : null}</tr></thead>
    <tbody>${hosts.map(([id, host]) => {
      const maintenance = host.otherConfig?.MAINTENANCE_MODE === "true";
      const state = maintenance ? "maintenance" : host.enabled ? "enabled" : "disabled";
      return html`<tr key=${id} data-id=${id}><th scope="row"><button class="link"
          onClick=${() => select({ kind: "host", id })}>${host.name_label}</button></th>
        <td><span class=${`badge host-${state}`}>${state}</span>
          <${PowerBadge} state=${host.power_state} /></td>
        <td><${UsageBar} used=${host.memory?.usage} total=${host.memory?.size}
          label=${`memory of ${host.name_label}`} /></td>
        <td>${host.address}</td>
        ${mayAct
          ? html`<td><${Actions} kind="host" id=${id} object=${host} notify=${notify}
              may=${may} /></td>`
          : null}</tr>`;
    })}</tbody></table>`;
}

function Srs({ live }) {
  const srs = [...live.srs.items].sort((a, b) => (a[1].name_label < b[1].name_label ? -1 : 1));
  return html`<table class="grid"><caption>Storage repositories</caption>
    <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Usage</th></tr></thead>
    <tbody>${srs.map(
      ([id, sr]) => html`<tr key=${id}><th scope="row">${sr.name_label}</th><td>${sr.SR_type}</td>
        <td><${UsageBar} used=${sr.physical_usage} total=${sr.size}
          label=${`usage of ${sr.name_label}`} /></td></tr>`,
    )}</tbody></table>`;
}

function TaskProgress({ task }) {
  const value = Math.round((task?.progress || 0) * 100);
  return html`<span class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100"
    aria-valuenow=${value} aria-label=${`progress of ${task?.name_label || "task"}`}>
    <span class="progress-fill" style=${`width:${value}%`}></span>
    <span class="progress-text">${value}%</span></span>`;
}

function Tasks({ live }) {
  const tasks = [...live.tasks.items].sort((a, b) => (b[1].created || 0) - (a[1].created || 0));
  return html`<table class="grid tasks"><caption>Tasks</caption>
    <thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Progress</th>
      <th scope="col">Started</th></tr></thead>
    <tbody>${tasks.map(
      ([id, task]) => html`<tr key=${id} data-id=${id}><th scope="row">${task.name_label}</th>
        <td>${task.status}</td><td><${TaskProgress} task=${task} /></td>
        <td>${time(task.created)}</td></tr>`,
    )}</tbody></table>`;
}

function Messages({ live }) {
  const messages = [...live.messages.items]
    .sort((a, b) => (b[1].time || 0) - (a[1].time || 0))
    .slice(0, MESSAGES_SHOWN);
  return html`<section aria-label="Recent messages"><h2>Recent messages</h2>
    <ul class="messages">${messages.map(
      ([id, m]) => html`<li key=${id}><time>${time(m.time)}</time> <strong>${m.name}</strong>
        <span>${m.body}</span></li>`,
    )}</ul></section>`;
}

function Notices({ notices, live, dismiss }) {
  return html`<section class="notices" aria-live="polite" aria-label="Actions">
    ${notices.map(
      (n) => html`<div key=${n.key} class=${`notice notice-${n.state}`} role=${n.state === "failed" ? "alert" : "status"}>
        <span>${n.label}: ${n.state}${n.error ? html` — <strong>${n.error}</strong>` : null}</span>
        ${n.taskId && n.state === "running"
          ? html`<${TaskProgress} task=${live.tasks.items.get(n.taskId) || { name_label: n.label }} />`
          : null}
        <button class="close" aria-label="Dismiss" onClick=${() => dismiss(n.key)}>×</button>
      </div>`,
    )}</section>`;
}

// -- the application ----------------------------------------------------------------------------

function Dashboard({ session, onSignedOut }) {
  const [live, status] = useLive(session, onSignedOut);
  const [route, setRoute] = useState(readRoute);
  const [selected, setSelected] = useState(null);
  const [notices, setNotices] = useState([]);
  const sampler = useMemo(() => new Sampler(live), [live]);
  const nextKey = useRef(1);
  const user = live.user || session.user;
  const grants = useGrants(live, user, status);
  const may = (id, permission) =>
    actsOnEverything(user.permission) || granted(grants, (o) => objectOf(live, o), id, permission);

  useEffect(() => {
    const onHash = () => setRoute(readRoute());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    writeRoute(route);
    live.vms.setFilter(vmFilter(route.filter));
  }, [route]);
  useEffect(() => sampler.start(), [sampler]);
  const [filterError, setFilterError] = useState(null);
  const vmError = live.vms.error;
  useEffect(() => {
    if (!vmError) return setFilterError(null);
    // The subscription's filter wraps the user's text: the text alone gives the error its
    // position in what the user typed (xo.getAllObjects parses it; limit 0 selects nothing).
    live.call("xo.getAllObjects", { filter: route.filter, limit: 0 }).then(
      () => setFilterError(vmError),
      setFilterError,
    );
  }, [vmError]);

  function update(key, change) {
    setNotices((all) => all.map((n) => (n.key === key ? { ...n, ...change } : n)));
  }
  async function notify(method, label, params) {
    const key = nextKey.current++;
    setNotices((all) => [...all.slice(-4), { key, label, state: "running" }]);
    try {
      const taskId = await live.call(method, { ...params, _async: true });
      update(key, { taskId });
      await live.call("task.wait", { id: taskId });
      update(key, { state: "done" });
    } catch (error) {
      update(key, { state: "failed", error: error.message });
    }
  }
  async function signOut() {
    live.stop();
    await fetch("/signout", { method: "POST" });
    onSignedOut();
  }

  const view = route.view;
  return html`
    <header class="top">
      <h1>xod</h1>
      <p class=${`status status-${status}`} role="status" aria-live="polite" id="status">
        ${status === "reconnecting" ? "reconnecting…" : status}</p>
      <p class="user">${user.email} <span class="badge" id="permission">${user.permission}</span></p>
      <button onClick=${signOut}>Sign out</button>
    </header>
    <nav aria-label="Views"><ul>
      ${VIEWS.map(
        ([name, label]) => html`<li key=${name}><a href=${`#/${name}${route.filter ? `?q=${encodeURIComponent(route.filter)}` : ""}`}
          aria-current=${view === name ? "page" : null}>${label}</a></li>`,
      )}</ul></nav>
    <${Notices} notices=${notices} live=${live}
      dismiss=${(key) => setNotices((all) => all.filter((n) => n.key !== key))} />
    <main class=${selected ? "with-details" : ""}>
      ${view === "vms" || view === "tree"
        ? html`<${Search} value=${route.filter} error=${filterError}
            onChange=${(filter) => setRoute({ ...route, filter })} />`
        : null}
      ${view === "tree"
        ? html`<${Tree} live=${live} select=${(id) => setSelected({ kind: "vm", id })} />`
        : null}
      ${view === "vms"
        ? html`<${VmTable} vms=${live.vms} hosts=${live.hosts}
            selected=${selected?.id} select=${(id) => setSelected({ kind: "vm", id })} />`
        : null}
      ${view === "hosts"
        ? html`<${Hosts} live=${live} notify=${notify} may=${may} select=${setSelected} />`
        : null}
      ${view === "srs" ? html`<${Srs} live=${live} />` : null}
      ${view === "tasks" ? html`<${Tasks} live=${live} />` : null}
      ${view === "messages" ? html`<${Messages} live=${live} />` : null}
      ${view === "charts" ? html`<${Charts} sampler=${sampler} />` : null}
      ${selected
        ? html`<${selected.kind === "vm" ? VmDetails : HostDetails} live=${live} id=${selected.id}
            notify=${notify} may=${may} sampler=${sampler} close=${() => setSelected(null)} />`
        : null}
    </main>`;
}

function App() {
  // /session's answer: who the cookie signs in, and xod's instance id.
  const [session, setSession] = useState(undefined);
  useEffect(() => {
    fetch("/session", { cache: "no-store" })
      .then((r) => r.json())
      .then(setSession)
      .catch(() => setSession({ user: null }));
  }, []);
  if (session === undefined) return html`<p class="loading">Loading…</p>`;
  if (!session.user) return html`<${SignIn} onSignedIn=${setSession} />`;
  return html`<${Dashboard} session=${session} onSignedOut=${() => setSession({ user: null })} />`;
}

// Marks this document: a test tells a reconnect from a page reload by it.
window.xodPageLoadedAt = performance.timeOrigin;
render(html`<${App} />`, document.getElementById("app"));
