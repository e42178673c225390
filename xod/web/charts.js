// Charts of the last minutes, drawn with uPlot: pool totals (running VMs, memory of the hosts,
// vCPUs of running VMs) sampled from what the live collections hold; a VM's or host's CPU and
// memory from vm.stats / host.stats (the host's RRDs), or from the cache until they answer.
// Sampled every SAMPLE_MS from the cache's figures; nothing is polled from xod.

import { h } from "./vendor/preact.module.js";
import { useEffect, useRef, useState } from "./vendor/preact-hooks.module.js";
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

/** Pool totals (no `kind`), or one VM's or host's figures, sampled from the cache. */
export function Charts({ sampler, kind, id }) {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const listener = () => setTick((t) => t + 1);
    sampler.listeners.add(listener);
    return () => sampler.listeners.delete(listener);
  }, [sampler]);
  const series = kind ? sampler.track(kind, id) : sampler.pool;
  const title = kind ? `This ${kind === "vm" ? "VM" : "host"}` : "Pool totals";
  return html`<section class="charts" aria-label="Charts">
    <${Plot} title=${title} names=${series.names} data=${series.data} tick=${tick} />
  </section>`;
}

const STATS_MS = 5000; // the "seconds" granularity's step

function averaged(perCpu) {
  const columns = Object.values(perCpu || {});
  if (!columns.length) return [];
  return columns[0].map((_, i) => columns.reduce((sum, c) => sum + (c[i] ?? 0), 0) / columns.length);
}

/** vm.stats / host.stats (the host's RRDs, XO's shape) as chart data. */
function fromStats({ endTimestamp, interval, stats }, kind) {
  const cpu = kind === "vm" && stats.cpuUsage ? stats.cpuUsage : averaged(stats.cpus);
  const memory = stats.memory || [];
  const free = stats.memoryFree || [];
  const times = memory.map((_, i) => endTimestamp - (memory.length - 1 - i) * interval);
  const used = memory.map((m, i) => (m == null || free[i] == null ? null : (m - free[i]) / GIB));
  return {
    cpu: [times, cpu.slice(-times.length)],
    memory: [times, used, memory.map((m) => (m == null ? null : m / GIB))],
  };
}

/** A VM's or host's CPU and memory over the last minutes, from vm.stats / host.stats, read
 * again every step while shown; until they answer (or if they fail), the cache's figures. */
export function StatsCharts({ live, sampler, kind, id }) {
  const [stats, setStats] = useState(null);
  useEffect(() => {
    let stopped = false;
    let timer = 0;
    setStats(null);
    async function read() {
      const [method, params] = kind === "vm" ? ["vm.stats", { id }] : ["host.stats", { host: id }];
      try {
        const answer = await live.call(method, params);
        if (!stopped) setStats(fromStats(answer, kind));
      } catch {
        if (!stopped) setStats(null);
      }
      if (!stopped) timer = setTimeout(read, STATS_MS);
    }
    read();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [live, kind, id]);
  if (!stats) return html`<${Charts} sampler=${sampler} kind=${kind} id=${id} />`;
  return html`<section class="charts" aria-label="Charts">
    <${Plot} title="CPU (%)" names=${["CPU %"]} data=${stats.cpu} />
    <${Plot} title="Memory (GiB)" names=${["used", "total"]} data=${stats.memory} />
  </section>`;
}

/** The time axis: the samples, and at least the last minute (uPlot spans a day for one). */
function lastMinute(times) {
  const last = times.length ? times[times.length - 1] : Date.now() / 1000;
  return [Math.min(times.length ? times[0] : last, last - 60), last];
}

const COLORS = ["#2b7bd6", "#d6822b", "#3aa657", "#a64bc9"];

/** One uPlot chart; uPlot is loaded when a chart first shows (the first paint does not wait). */
function Plot({ title, names, data, tick }) {
  const box = useRef(null);
  const plot = useRef(null);
  const latest = useRef(data);
  latest.current = data;
  useEffect(() => {
    const element = box.current;
    let resize = null;
    let created = null;
    import("./vendor/uPlot.esm.js").then(({ default: uPlot }) => {
      if (!element.isConnected) return;
      created = plot.current = new uPlot(
        {
          title,
          width: Math.max(260, element.clientWidth),
          height: 200,
          series: [
            {},
            ...names.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2 })),
          ],
          axes: [{ stroke: "currentColor" }, { stroke: "currentColor" }],
          scales: { x: { time: true, range: () => lastMinute(latest.current[0]) } },
        },
        latest.current,
        element,
      );
      resize = new ResizeObserver(() =>
        created.setSize({ width: Math.max(260, element.clientWidth), height: 200 }),
      );
      resize.observe(element);
    });
    return () => {
      resize?.disconnect();
      created?.destroy();
      plot.current = null;
    };
  }, [title, names.join("|")]);
  useEffect(() => plot.current?.setData(data), [data, tick]);
  return html`<figure class="chart" ref=${box} aria-label=${title}></figure>`;
}
