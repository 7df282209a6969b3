// trafficlab dashboard: fetches /api/ and the server-drawn SVG charts.
"use strict";

const TEXT = {
  en: {
    title: "Traffic", custom: "custom", from: "from", to: "to", apply: "apply", autorefresh: "auto-refresh",
    switch: "中文", requests: "requests", bytesout: "bytes out", errratio: "5xx share", p95: "95th percentile",
    firing: "firing alerts", c_requests: "Requests per minute",
    c_bandwidth: "Outgoing bandwidth and the month's 95th percentile", c_status: "Requests per minute by status class",
    c_backends: "Requests per minute per backend", topuris: "Top URIs", topclients: "Top client addresses",
    backends: "Backends", backend: "backend", client: "client", count: "requests", firingalerts: "Firing alerts",
    history: "Alert history", rule: "rule", scope: "scope", state: "state", since: "since", until: "until",
    value: "value", baseline: "baseline", updated: "updated", none: "none", range: "Range",
    s_firing: "firing", s_resolved: "resolved",
    r_traffic_high: "traffic too high", r_traffic_low: "traffic too low", r_no_data: "no data",
    r_error_ratio: "5xx share", r_backend_silent: "backend silent", total: "total",
  },
  zh: {
    title: "流量监控", custom: "自定义", from: "从", to: "到", apply: "应用", autorefresh: "自动刷新",
    switch: "English", requests: "请求数", bytesout: "出流量", errratio: "5xx 比例", p95: "95计费值",
    firing: "告警中", c_requests: "每分钟请求数", c_bandwidth: "出口带宽与本月95计费值",
    c_status: "各状态码类别每分钟请求数", c_backends: "各后端每分钟请求数", topuris: "热门 URI",
    topclients: "热门客户端地址", backends: "后端", backend: "后端", client: "客户端", count: "请求数",
    firingalerts: "正在告警", history: "告警历史", rule: "规则", scope: "范围", state: "状态", since: "开始",
    until: "结束", value: "数值", baseline: "基线", updated: "更新于", none: "无", range: "时间范围",
    s_firing: "告警中", s_resolved: "已恢复",
    r_traffic_high: "流量过高", r_traffic_low: "流量过低", r_no_data: "无数据",
    r_error_ratio: "5xx 比例过高", r_backend_silent: "后端无流量", total: "合计",
  },
};

const state = {
  lang: null, range: "1h", from: null, to: null, timer: null, seq: 0,
};

function pickLang() {
  const q = new URLSearchParams(location.search).get("lang");
  if (q === "zh" || q === "en") return q;
  const saved = localStorage.getItem("trafficlab.lang");
  if (saved === "zh" || saved === "en") return saved;
  // The server chose from Accept-Language; navigator.language agrees
  // unless the browser says otherwise.
  const nav = (navigator.language || "").toLowerCase();
  if (nav.startsWith("zh")) return "zh";
  if (nav.startsWith("en")) return "en";
  return document.documentElement.dataset.lang || "en";
}

function t(key) { return (TEXT[state.lang] && TEXT[state.lang][key]) || TEXT.en[key] || key; }

function applyText() {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.title = "trafficlab · " + t("title");
}

function group(n) {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + u[i];
}

function bits(n) {
  const u = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return n.toFixed(i ? 2 : 0) + " " + u[i];
}

function when(s) {
  if (!s) return "–";
  const d = new Date(s);
  const p = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

function query() {
  const q = new URLSearchParams();
  if (state.from) {
    q.set("from", state.from);
    if (state.to) q.set("to", state.to);
  } else {
    q.set("range", state.range);
  }
  return q;
}

async function getJSON(path) {
  const r = await fetch(path + "?" + query().toString());
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

async function getChart(name) {
  const q = query();
  q.set("lang", state.lang);
  q.set("tz", String(-new Date().getTimezoneOffset()));
  const r = await fetch(`/api/chart/${name}.svg?` + q.toString());
  if (!r.ok) throw new Error(`chart ${name}: ${r.status}`);
  document.getElementById("chart-" + name).innerHTML = await r.text();
}

function fillTable(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = body.insertRow();
    const td = tr.insertCell();
    td.colSpan = 8;
    td.className = "muted";
    td.textContent = t("none");
    return;
  }
  for (const cells of rows) {
    const tr = body.insertRow();
    if (cells.cls) tr.className = cells.cls;
    for (const c of cells) {
      const td = tr.insertCell();
      td.textContent = c.text;
      if (c.cls) td.className = c.cls;
    }
  }
}

function alertValue(a, v) {
  return a.rule === "error_ratio" ? (v * 100).toFixed(1) + "%" : group(v) + "/min";
}

function scopeName(s) { return s === "total" ? t("total") : s; }

async function load() {
  const seq = ++state.seq;
  const err = document.getElementById("error");
  try {
    const [o, top, al] = await Promise.all([
      getJSON("/api/overview"), getJSON("/api/top"), getJSON("/api/alerts"),
      ...["requests", "bandwidth", "status", "backends"].map(getChart),
    ]);
    if (seq !== state.seq) return;
    document.getElementById("range-label").textContent = `${t("range")}: ${when(o.from)} – ${when(o.to)}`;
    const tr = document.getElementById("total-requests");
    tr.textContent = group(o.totals.requests);
    tr.dataset.value = String(o.totals.requests);
    document.getElementById("total-bytes").textContent = bytes(o.totals.bytes_out);
    document.getElementById("error-ratio").textContent = (o.totals.error_ratio * 100).toFixed(2) + "%";
    document.getElementById("p95").textContent = bits(o.bandwidth.p95_bps);
    document.getElementById("p95-month").textContent = o.bandwidth.p95_month;
    document.getElementById("firing-count").textContent = String(al.firing.length);
    fillTable("top-uris", top.uris.map((e) => [{ text: e.key, cls: "key" }, { text: group(e.count), cls: "num" }]));
    fillTable("top-clients", top.clients.map((e) => [{ text: e.key, cls: "key" }, { text: group(e.count), cls: "num" }]));
    fillTable("backends", o.backends.map((b) => [{ text: b }, { text: group(o.totals.backends[b] || 0), cls: "num" },
      { text: bits((o.bandwidth.p95_backends || {})[b] || 0), cls: "num" }]));
    fillTable("alerts-firing", al.firing.map((a) => Object.assign([{ text: t("r_" + a.rule) }, { text: scopeName(a.scope) },
      { text: when(a.started_at) }, { text: alertValue(a, a.value), cls: "num" }, { text: alertValue(a, a.baseline), cls: "num" }], { cls: "firing" })));
    fillTable("alerts-history", al.history.map((a) => Object.assign([{ text: t("r_" + a.rule) }, { text: scopeName(a.scope) },
      { text: t("s_" + a.state) }, { text: when(a.started_at) }, { text: when(a.ended_at) },
      { text: alertValue(a, a.value), cls: "num" }, { text: alertValue(a, a.baseline), cls: "num" }], { cls: a.state })));
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
    err.hidden = true;
    document.body.dataset.loaded = String(seq);
  } catch (e) {
    err.textContent = String(e.message || e);
    err.hidden = false;
  }
}

function markRange() {
  for (const b of document.querySelectorAll("#ranges button[data-range]")) {
    b.classList.toggle("active", !state.from && b.dataset.range === state.range);
  }
  document.getElementById("custom-toggle").classList.toggle("active", !!state.from);
}

function saveURL() {
  const q = query();
  if (new URLSearchParams(location.search).has("lang")) q.set("lang", state.lang);
  history.replaceState(null, "", "?" + q.toString());
}

function schedule() {
  clearInterval(state.timer);
  state.timer = null;
  // A custom range with a fixed end does not change: nothing to refresh.
  if (document.getElementById("auto-refresh").checked && !(state.from && state.to)) {
    state.timer = setInterval(load, 60000);
  }
}

function localInput(d) {
  const p = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function init() {
  state.lang = pickLang();
  const q = new URLSearchParams(location.search);
  if (q.get("from")) {
    state.from = q.get("from"); state.to = q.get("to");
    const f = new Date(isNaN(state.from) ? state.from : state.from * 1000);
    if (!isNaN(f)) document.getElementById("custom-from").value = localInput(f);
    const t2 = state.to ? new Date(isNaN(state.to) ? state.to : state.to * 1000) : new Date();
    if (!isNaN(t2)) document.getElementById("custom-to").value = localInput(t2);
  }
  if (q.get("range")) state.range = q.get("range");
  applyText();
  markRange();
  for (const b of document.querySelectorAll("#ranges button[data-range]")) {
    b.addEventListener("click", () => {
      state.range = b.dataset.range; state.from = state.to = null;
      document.getElementById("custom").hidden = true;
      markRange(); saveURL(); schedule(); load();
    });
  }
  document.getElementById("custom-toggle").addEventListener("click", () => {
    const f = document.getElementById("custom");
    f.hidden = !f.hidden;
    const now = new Date();
    document.getElementById("custom-to").value ||= localInput(now);
    document.getElementById("custom-from").value ||= localInput(new Date(now - 3 * 3600e3));
  });
  document.getElementById("custom").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.from = new Date(document.getElementById("custom-from").value).toISOString();
    state.to = new Date(document.getElementById("custom-to").value).toISOString();
    markRange(); saveURL(); schedule(); load();
  });
  document.getElementById("auto-refresh").addEventListener("change", schedule);
  document.getElementById("lang-switch").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("trafficlab.lang", state.lang);
    applyText(); saveURL(); load();
  });
  schedule();
  load();
}

init();
