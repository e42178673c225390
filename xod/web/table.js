// The VM table, virtualised: only the rows in view (and a few around) are in the DOM, so 10 000
// VMs cost what 40 do. The order (by name) is recomputed only when VMs come, go or are renamed.

import { h } from "./vendor/preact.module.js";
import { useEffect, useRef, useState } from "./vendor/preact-hooks.module.js";
import htm from "./vendor/htm.module.js";
import { onNextFrame } from "./live.js";

const html = htm.bind(h);
export const ROW_HEIGHT = 36;
const OVERSCAN = 8;

function sizeOf(bytes) {
  if (!bytes) return "";
  const gib = bytes / 2 ** 30;
  return gib >= 1 ? `${gib.toFixed(1)} GiB` : `${Math.round(bytes / 2 ** 20)} MiB`;
}

function addressesOf(vm) {
  const values = Object.values(vm.addresses || {});
  return values.length > 2 ? `${values.slice(0, 2).join(", ")} +${values.length - 2}` : values.join(", ");
}

function useOrder(vms, loaded) {
  const cache = useRef({ order: -1, ids: [] });
  if (!loaded) return [];
  if (cache.current.order !== vms.order) {
    const names = [];
    for (const [id, vm] of vms.items) names.push([(vm.name_label || "").toLowerCase(), id]);
    names.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1));
    cache.current = { order: vms.order, ids: names.map((entry) => entry[1]) };
  }
  return cache.current.ids;
}

export function VmTable({ vms, hosts, selected, select }) {
  const { loaded, error } = vms;
  // While the snapshot comes in (500 VMs a frame), the count only: no sort per frame.
  const ids = useOrder(vms, loaded);
  const viewport = useRef(null);
  const [scroll, setScroll] = useState({ top: 0, height: 600 });
  useEffect(() => {
    const element = viewport.current;
    const measure = () => setScroll({ top: element.scrollTop, height: element.clientHeight });
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  const measure = useRef(() => {
    const element = viewport.current;
    if (element) setScroll({ top: element.scrollTop, height: element.clientHeight });
  });
  const onScroll = () => onNextFrame(measure.current);
  const first = Math.max(0, Math.floor(scroll.top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(ids.length, Math.ceil((scroll.top + scroll.height) / ROW_HEIGHT) + OVERSCAN);
  const rows = [];
  for (let index = first; index < last; index++) {
    const id = ids[index];
    const vm = vms.items.get(id);
    if (!vm) continue;
    const host = hosts.items.get(vm.$container);
    rows.push(html`<div role="row" class=${`row${selected === id ? " selected" : ""}`} key=${id}
      data-id=${id} data-name=${vm.name_label} aria-rowindex=${index + 2} tabindex="0"
      style=${`transform:translateY(${index * ROW_HEIGHT}px)`}
      onClick=${() => select(id)} onKeyDown=${(e) => e.key === "Enter" && select(id)}>
      <span role="cell" class="c-name">${vm.name_label}</span>
      <span role="cell" class="c-state"><span class=${`badge power-${(vm.power_state || "").toLowerCase()}`}>
        ${vm.power_state}</span></span>
      <span role="cell" class="c-host">${host ? host.name_label : ""}</span>
      <span role="cell" class="c-cpus">${vm.CPUs?.number}</span>
      <span role="cell" class="c-memory">${sizeOf(vm.memory?.size)}</span>
      <span role="cell" class="c-ips">${addressesOf(vm)}</span>
      <span role="cell" class="c-tags">${(vm.tags || []).map((t) => html`<span class="tag">${t}</span>`)}</span>
    </div>`);
  }
  return html`<section class="vm-table" aria-label="Virtual machines">
    <p class="count" id="vm-count">${error ? "no VMs: the filter is not valid" : loaded ? `${ids.length} VMs` : `loading… ${vms.items.size}`}</p>
    <div role="table" aria-label="VMs" aria-rowcount=${ids.length + 1} aria-describedby="vm-count">
      <div role="rowgroup"><div role="row" class="row head" aria-rowindex="1">
        <span role="columnheader" class="c-name">Name</span>
        <span role="columnheader" class="c-state">State</span>
        <span role="columnheader" class="c-host">Host</span>
        <span role="columnheader" class="c-cpus">CPUs</span>
        <span role="columnheader" class="c-memory">Memory</span>
        <span role="columnheader" class="c-ips">IP addresses</span>
        <span role="columnheader" class="c-tags">Tags</span>
      </div></div>
      <div role="rowgroup" class="viewport" ref=${viewport} onScroll=${onScroll}>
        <div class="spacer" style=${`height:${ids.length * ROW_HEIGHT}px`}>${rows}</div>
      </div>
    </div>
  </section>`;
}
