// The live picture of processes, threads and coroutines, drawn from
// snapshot.json once a second, and the timeline drawn from trace.json.
// Handwritten, no libraries: the page must load nothing from outside.
"use strict";

const MAX_MARKS = 1200; // marks drawn per thread lane; the rest are counted

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function bytes(n) {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}

function count(n) { return Number(n).toLocaleString("en-US"); }

const counts = { processes: 0, threads: 0, tasks: 0 };

function drawProcess(p, title) {
  counts.processes++;
  const box = el("div", "process");
  box.dataset.pid = p.pid;
  const head = el("div", "head", title + " — pid " + p.pid);
  let switches = 0, tasks = 0;
  for (const s of p.schedulers) { switches += s.switches; tasks += s.tasks.length; }
  head.appendChild(el("span", "stats",
    "RSS " + bytes(p.rss) + " · " + p.os_threads + " OS threads · kernel switches " +
    count(p.voluntary_switches) + " voluntary, " + count(p.involuntary_switches) +
    " involuntary · task switches " + count(switches) + " · " + count(tasks) + " live tasks"));
  box.appendChild(head);
  for (const s of p.schedulers) box.appendChild(drawScheduler(s));
  if (p.error) box.appendChild(el("div", "error", p.error));
  box.appendChild(el("div", "os", "operating system: process " + p.pid + " · env " +
    p.env.length + " variables (values redacted)"));
  if (p.children.length > 0) {
    const kids = el("div", "children");
    for (const c of p.children) {
      if (c.process) {
        kids.appendChild(drawProcess(c.process, c.name));
      } else {
        counts.processes++;
        const bad = el("div", "process failed");
        bad.dataset.pid = c.pid;
        bad.appendChild(el("div", "head", c.name + " — pid " + c.pid));
        bad.appendChild(el("div", "error", c.error));
        kids.appendChild(bad);
      }
    }
    box.appendChild(kids);
  }
  return box;
}

function drawScheduler(s) {
  const box = el("div", "sched");
  box.appendChild(el("div", "head", "weave runtime: scheduler " + s.name + " · " + s.threads.length +
    " threads · " + count(s.spawned) + " tasks started, " + count(s.ended) + " ended"));
  const lanes = new Map();
  const newLane = [];
  for (const t of s.threads) lanes.set(t.index, []);
  for (const t of s.tasks) {
    counts.tasks++;
    if (t.thread < 0 || !lanes.has(t.thread)) newLane.push(t);
    else lanes.get(t.thread).push(t);
  }
  for (const th of s.threads) {
    counts.threads++;
    const row = el("div", "thread");
    row.dataset.index = th.index;
    const label = el("div", "label");
    label.appendChild(document.createTextNode("thread " + th.index + (th.tid ? " tid " + th.tid : "") + " "));
    if (th.state === "running") label.appendChild(el("span", "now", "▶ task " + th.task));
    else label.appendChild(el("span", "idle", "idle"));
    label.appendChild(el("div", "idle", count(th.resumes) + " switches · " + count(th.tasks_run) + " tasks" +
      (th.tid ? " · kernel " + count(th.voluntary_switches) + "+" + count(th.involuntary_switches) : "")));
    row.appendChild(label);
    row.appendChild(drawMarks(lanes.get(th.index)));
    box.appendChild(row);
  }
  if (newLane.length > 0) {
    const row = el("div", "thread unstarted");
    row.appendChild(el("div", "label idle", "not started yet"));
    row.appendChild(drawMarks(newLane));
    box.appendChild(row);
  }
  return box;
}

function drawMarks(tasks) {
  const marks = el("div", "marks");
  // Running first, then runnable, then parked: what moves is seen first.
  const order = { running: 0, runnable: 1, parked: 2 };
  tasks.sort((a, b) => (order[a.state] - order[b.state]) || (a.id - b.id));
  for (const t of tasks.slice(0, MAX_MARKS)) {
    const m = el("i", "task " + (t.thread < 0 ? "new" : t.state));
    m.title = "task " + t.id + (t.name ? " " + t.name : "") + " · " + t.state +
      (t.wait ? " (" + t.wait + ")" : "") + " · " + t.resumes + " resumes" +
      (t.created ? "\n" + t.created : "");
    marks.appendChild(m);
  }
  if (tasks.length > MAX_MARKS) marks.appendChild(el("span", "more", "+" + count(tasks.length - MAX_MARKS) + " more"));
  return marks;
}

let updates = 0;

async function refresh() {
  try {
    const resp = await fetch("snapshot.json", { cache: "no-store" });
    const tree = await resp.json();
    counts.processes = counts.threads = counts.tasks = 0;
    const root = drawProcess(tree.process, tree.process.name);
    document.getElementById("tree").replaceChildren(root);
    updates++;
    const sum = document.getElementById("summary");
    sum.dataset.processes = counts.processes;
    sum.dataset.threads = counts.threads;
    sum.dataset.tasks = counts.tasks;
    sum.dataset.updates = updates;
    sum.textContent = counts.processes + " processes · " + counts.threads + " threads · " +
      count(counts.tasks) + " tasks · " + new Date(tree.time).toLocaleTimeString();
  } catch (e) {
    document.getElementById("summary").textContent = "no snapshot: " + e;
  }
}

// ---- the timeline, drawn as Perfetto draws a trace -----------------------

const SVGNS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function hue(name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return h % 360;
}

function params() {
  const out = {};
  const q = location.hash.split("?")[1] || "";
  for (const kv of q.split("&")) {
    const [k, v] = kv.split("=");
    if (k) out[k] = Number(v);
  }
  return out;
}

async function drawTimeline() {
  const status = document.getElementById("timeline-status");
  const view = document.getElementById("timeline-view");
  let trace;
  try {
    trace = await (await fetch("trace.json?download=0", { cache: "no-store" })).json();
  } catch (e) {
    status.textContent = "no trace: " + e;
    return;
  }
  const evs = trace.traceEvents;
  const procNames = new Map(), threadNames = new Map(), sortIdx = new Map();
  let t0 = Infinity, t1 = -Infinity;
  for (const e of evs) {
    if (e.ph === "M") {
      if (e.name === "process_name") procNames.set(e.pid, e.args.name);
      if (e.name === "thread_name") threadNames.set(e.pid + "/" + e.tid, e.args.name);
      if (e.name === "thread_sort_index") sortIdx.set(e.pid + "/" + e.tid, e.args.sort_index);
      continue;
    }
    if (e.ph === "X") { t0 = Math.min(t0, e.ts); t1 = Math.max(t1, e.ts + e.dur); }
  }
  if (t0 === Infinity) { status.textContent = "the trace is empty: run with a Recorder whose Config.Timeline is set"; return; }
  // The window: #timeline?start=MS&span=MS from the trace's beginning;
  // by default the 3 ms before the last message between processes
  // arrived (or the trace's last 3 ms), where every process was at work.
  const p = params();
  let anchor = t1;
  let lastMsg = -Infinity;
  for (const e of evs) if (e.ph === "f" && e.cat === "msg") lastMsg = Math.max(lastMsg, e.ts);
  if (lastMsg > -Infinity) anchor = lastMsg;
  const span = p.span ? p.span * 1000 : Math.min(3000, t1 - t0);
  const start = p.start !== undefined ? t0 + p.start * 1000 : Math.max(t0, anchor - span * 0.85);
  const end = start + span;
  // Tracks: processes in order of pid, their threads by sort index.
  const tracks = new Map();
  for (const e of evs) {
    if (e.ph === "M") continue;
    const key = e.pid + "/" + e.tid;
    if (!tracks.has(key)) tracks.set(key, { pid: e.pid, tid: e.tid, key: key });
  }
  const pids = [...new Set([...tracks.values()].map(t => t.pid))].sort((a, b) => a - b);
  const W = Math.max(900, view.clientWidth || 1200), LW = 230, ROW = 22, PH = 24;
  const x = ts => LW + (ts - start) / span * (W - LW - 10);
  const rows = new Map();
  let y = 30;
  const root = svg("svg", { width: W, height: 10 });
  // The time axis.
  const ticks = 8;
  for (let i = 0; i <= ticks; i++) {
    const ts = start + span * i / ticks;
    root.appendChild(svg("line", { x1: x(ts), x2: x(ts), y1: 18, y2: 26, stroke: "#888" }));
    const label = "+" + ((ts - start) / 1000).toFixed(span >= 10000 ? 1 : 3) + " ms";
    root.appendChild(svg("text", { x: x(ts) + 2, y: 14, "font-size": 10, fill: "#555" }, label));
  }
  for (const pid of pids) {
    root.appendChild(svg("rect", { x: 0, y: y, width: W, height: PH, fill: "#e8eaef" }));
    root.appendChild(svg("text", { x: 6, y: y + 16, "font-size": 12, "font-weight": "bold", fill: "#222" },
      "▾ " + (procNames.get(pid) || "process " + pid)));
    y += PH;
    const ts = [...tracks.values()].filter(t => t.pid === pid);
    ts.sort((a, b) => (sortIdx.get(a.key) ?? 1e9) - (sortIdx.get(b.key) ?? 1e9) || a.tid - b.tid);
    for (const t of ts) {
      rows.set(t.key, y);
      root.appendChild(svg("line", { x1: 0, x2: W, y1: y + ROW, y2: y + ROW, stroke: "#eee" }));
      root.appendChild(svg("text", { x: 14, y: y + 15, "font-size": 11, fill: "#333" },
        threadNames.get(t.key) || "thread " + t.tid));
      y += ROW;
    }
  }
  root.setAttribute("height", y + 10);
  const clip = svg("clipPath", { id: "lanes" });
  clip.appendChild(svg("rect", { x: LW, y: 0, width: W - LW, height: y }));
  root.appendChild(clip);
  const body = svg("g", { "clip-path": "url(#lanes)" });
  root.appendChild(body);
  let slices = 0, arrows = 0;
  // An arrow starts at the slice written last on its lane before it, as
  // in Perfetto: at the slice's end, or at its start if the arrow's target
  // starts no later. Its own time only says which slice holds it.
  const flowS = new Map(), last = new Map();
  for (const e of evs) {
    const ry = rows.get(e.pid + "/" + e.tid);
    if (ry === undefined) continue;
    if (e.ph === "X") {
      last.set(e.pid + "/" + e.tid, e);
      if (e.ts + e.dur < start || e.ts > end) continue;
      const x0 = x(e.ts), w = Math.max(1, x(e.ts + e.dur) - x0);
      const h = hue(e.name);
      body.appendChild(svg("rect", { x: x0, y: ry + 3, width: w, height: ROW - 6,
        fill: "hsl(" + h + ",55%,62%)", stroke: "hsl(" + h + ",45%,45%)", "stroke-width": 0.5 }));
      if (w > 46) body.appendChild(svg("text", { x: x0 + 3, y: ry + 15, "font-size": 10, fill: "#111" }, e.name));
      slices++;
    } else if (e.ph === "i" && e.ts >= start && e.ts <= end) {
      body.appendChild(svg("path", { d: "M" + x(e.ts) + " " + (ry + ROW - 3) + " l-3 3 h6 z", fill: "#555" }));
    } else if (e.ph === "s") {
      flowS.set(e.cat + e.id, { pid: e.pid, tid: e.tid, slice: last.get(e.pid + "/" + e.tid) || { ts: e.ts, dur: 0 } });
    }
  }
  for (const e of evs) {
    if (e.ph !== "f") continue;
    const s = flowS.get(e.cat + e.id);
    if (!s) continue;
    const from = s.slice.ts >= e.ts ? s.slice.ts : s.slice.ts + s.slice.dur;
    if (from < start || e.ts > end || e.ts < start || from > end) continue;
    const y0 = rows.get(s.pid + "/" + s.tid) + ROW / 2, y1 = rows.get(e.pid + "/" + e.tid) + ROW / 2;
    const color = e.cat === "msg" ? "#c0392b" : "#333";
    body.appendChild(svg("path", { d: "M" + x(from) + " " + y0 + " C" + (x(from) + 30) + " " + y0 + " " +
      (x(e.ts) - 30) + " " + y1 + " " + x(e.ts) + " " + y1, fill: "none", stroke: color, "stroke-width": 1, opacity: 0.7 }));
    body.appendChild(svg("circle", { cx: x(e.ts), cy: y1, r: 2, fill: color }));
    arrows++;
  }
  view.replaceChildren(root);
  status.textContent = pids.length + " processes · " + rows.size + " tracks · " + count(slices) +
    " run segments and " + count(arrows) + " arrows shown · " + (span / 1000).toFixed(2) + " ms from " + ((start - t0) / 1000).toFixed(1) + " ms into the trace";
  status.dataset.slices = slices;
  status.dataset.arrows = arrows;
  status.dataset.done = "1";
}

let timer = null;

function route() {
  const timeline = location.hash.startsWith("#timeline");
  document.getElementById("live").hidden = timeline;
  document.getElementById("timeline").hidden = !timeline;
  document.getElementById("nav-live").classList.toggle("on", !timeline);
  document.getElementById("nav-timeline").classList.toggle("on", timeline);
  clearInterval(timer);
  if (timeline) {
    drawTimeline();
  } else {
    refresh();
    timer = setInterval(refresh, 1000);
  }
}

window.addEventListener("hashchange", route);
route();
