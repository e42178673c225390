// Charts of the last minutes, drawn with uPlot from what the live collections hold: pool totals
// (running VMs, memory of the hosts, vCPUs of running VMs), a VM's vCPUs and memory, a host's
// memory used and total.
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
    this.tracked = new Map(); // "vm:<id>" / "host:<id>" → Series
    this.listeners = new Set();
  }

  start() {
    this.sample();
    const timer = setInterval(() => this.sample(), SAMPLE_MS);
    return () => clearInterval(timer);
  }

  /** The series of one VM or host, sampled from now on. */
  track(kind, id) {
    const key = `${kind}:${id}`;
    if (!this.tracked.has(key)) {
      const names = kind === "vm" ? ["vCPUs", "memory (GiB)"] : ["memory used (GiB)", "memory (GiB)"];
      this.tracked.set(key, new Series(names));
      this.sample();
    }
    return this.tracked.get(key);
  }

  figures(key) {
    const [kind, id] = key.split(":");
    if (kind === "host") {
      const host = this.live.hosts.items.get(id);
      return [(host?.memory?.usage || 0) / GIB, (host?.memory?.size || 0) / GIB];
    }
    const vm = this.live.vms.items.get(id);
    const on = vm?.power_state === "Running";
    return [on ? vm.CPUs?.number || 0 : 0, on ? (vm.memory?.size || 0) / GIB : 0];
  }

  sample() {
    if (!this.live.vms.loaded || !this.live.hosts.loaded) return; // no zeros before the data
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
    for (const [key, series] of this.tracked) series.push(now, this.figures(key));
    for (const listener of this.listeners) listener();
  }
}

/** The time axis: the samples, and at least the last minute (uPlot spans a day for one). */
function lastMinute(times) {
  const last = times.length ? times[times.length - 1] : Date.now() / 1000;
  return [Math.min(times.length ? times[0] : last, last - 60), last];
}

const COLORS = ["#2b7bd6", "#d6822b", "#3aa657", "#a64bc9"];

/** Pool totals (no `kind`), or one VM's or host's figures. */
export function Charts({ sampler, kind, id }) {
  const series = kind ? sampler.track(kind, id) : sampler.pool;
  const title = kind ? `This ${kind === "vm" ? "VM" : "host"}` : "Pool totals";
  return html`<section class="charts" aria-label="Charts">
    <${LiveChart} sampler=${sampler} title=${title} series=${series} />
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
          // At least the last minute on the time axis, even with one sample so far.
          scales: { x: { time: true, range: () => lastMinute(series.data[0]) } },
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
