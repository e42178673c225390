// Charts of the last minutes, drawn with uPlot from what the live collections hold: pool totals
// (running VMs, memory of the hosts, vCPUs of running VMs) and, for a VM, its vCPUs and memory.
// Sampled every SAMPLE_MS from the cache's figures; nothing is polled from xod.

import { h } from "./vendor/preact.module.js";
import { useEffect, useRef } from "./vendor/preact-hooks.module.js";
import htm from "./vendor/htm.module.js";

const html = htm.bind(h);
const SAMPLE_MS = 2000;
const KEPT = 300; // ten minutes
const GIB = 2 ** 30;

class Series {
  constructor(names) {
    this.names = names;
    this.data = [[], ...names.map(() => [])];
  }

  push(time, values) {
    this.data[0].push(time);
    values.forEach((value, i) => this.data[i + 1].push(value));
    if (this.data[0].length > KEPT) for (const column of this.data) column.shift();
  }
}

export class Sampler {
  constructor(live) {
    this.live = live;
    this.pool = new Series(["running VMs", "vCPUs running", "host memory used (GiB)"]);
    this.vms = new Map();
    this.listeners = new Set();
  }

  start() {
    this.sample();
    const timer = setInterval(() => this.sample(), SAMPLE_MS);
    return () => clearInterval(timer);
  }

  vm(id) {
    if (!this.vms.has(id)) {
      this.vms.set(id, new Series(["vCPUs", "memory (GiB)"]));
      this.sample();
    }
    return this.vms.get(id);
  }

  sample() {
    const now = Date.now() / 1000;
    let running = 0;
    let cpus = 0;
    for (const vm of this.live.vms.items.values()) {
      if (vm.power_state === "Running") {
        running++;
        cpus += vm.CPUs?.number || 0;
      }
    }
    let used = 0;
    for (const host of this.live.hosts.items.values()) used += host.memory?.usage || 0;
    this.pool.push(now, [running, cpus, used / GIB]);
    for (const [id, series] of this.vms) {
      const vm = this.live.vms.items.get(id);
      const on = vm?.power_state === "Running";
      series.push(now, [on ? vm.CPUs?.number || 0 : 0, on ? (vm.memory?.size || 0) / GIB : 0]);
    }
    for (const listener of this.listeners) listener();
  }
}

const COLORS = ["#2b7bd6", "#d6822b", "#3aa657", "#a64bc9"];

export function PoolCharts({ sampler, series: which, id }) {
  const series = which === "vm" ? sampler.vm(id) : sampler.pool;
  return html`<section class="charts" aria-label="Charts">
    <${LiveChart} sampler=${sampler} title=${which === "vm" ? "This VM" : "Pool totals"}
      series=${series} />
  </section>`;
}

function LiveChart({ sampler, title, series }) {
  const box = useRef(null);
  useEffect(() => {
    const element = box.current;
    let plot = null;
    let resize = null;
    const redraw = () => plot?.setData(series.data);
    sampler.listeners.add(redraw);
    // Loaded when a chart is first shown: the page's first paint does not wait for it.
    import("./vendor/uPlot.esm.js").then(({ default: uPlot }) => {
      if (!element.isConnected) return;
      plot = new uPlot(
        {
          title,
          width: Math.max(260, element.clientWidth),
          height: 200,
          series: [
            {},
            ...series.names.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2 })),
          ],
          axes: [{ stroke: "currentColor" }, { stroke: "currentColor" }],
        },
        series.data,
        element,
      );
      resize = new ResizeObserver(() =>
        plot.setSize({ width: Math.max(260, element.clientWidth), height: 200 }),
      );
      resize.observe(element);
    });
    return () => {
      sampler.listeners.delete(redraw);
      resize?.disconnect();
      plot?.destroy();
      plot = null;
    };
  }, [sampler, series]);
  return html`<figure class="chart" ref=${box} aria-label=${title}></figure>`;
}
