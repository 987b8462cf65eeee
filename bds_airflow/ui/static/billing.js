/* The Billing page (SPEC §12): calendar, a period's values, audit, files, versions, chart.
   Talks only to this plugin's API (same origin, the Airflow session cookie). */
"use strict";

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({
  "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const STATE_CLASS = {
  "published": "st-published", "restated": "st-restated", "running": "st-running",
  "waiting for readiness": "st-waiting", "failed": "st-failed", "missing": "st-missing",
  "not due": "st-not-due"};
const GROUP = {1: "Concurrent (1)", 2: "Enabled (2)"};
const COLOURS = ["#0b6bcb", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0c8599", "#c2255c"];

let tenants = [], tenant = null, chart = null, series = null, selected = null;
let loads = 0;  // only the latest request's answer is drawn

async function api(path) {
  const r = await fetch(path, {credentials: "same-origin", headers: {Accept: "application/json"}});
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    throw new Error(`${r.status} ${body.detail || r.statusText}`);
  }
  return r.json();
}

function notice(text, bad) {
  $("notice").textContent = text || "";
  $("notice").className = bad ? "bad-text" : "muted";
}

function addDays(iso, n) {
  const d = new Date(iso + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  return {t: h.get("t"), from: h.get("from"), to: h.get("to"), p: h.get("p")};
}

function writeHash() {
  const h = new URLSearchParams();
  if (tenant) h.set("t", tenant.id);
  if ($("from").value) h.set("from", $("from").value);
  if ($("to").value) h.set("to", $("to").value);
  if (selected) h.set("p", selected);
  history.replaceState(null, "", "#" + h.toString());
}

async function init() {
  try {
    tenants = (await api("api/tenants")).tenants;
  } catch (e) {
    notice("Cannot list tenants: " + e.message, true);
    return;
  }
  $("tenant-list").innerHTML = tenants.map((t) =>
    `<option value="${esc(t.id)}">${esc(t.name)} · ${esc(t.timezone)}</option>`).join("");
  notice(`${tenants.length} tenant(s) you may read`);
  const h = readHash();
  const first = tenants.find((t) => t.id === h.t) || tenants[0];
  if (first) await pick(first.id, h.from, h.to, h.p);
}

async function pick(id, from, to, period) {
  const t = tenants.find((x) => x.id === id || x.name === id);
  if (!t) { notice(`No tenant ${id}`, true); return; }
  tenant = t;
  $("tenant-search").value = t.id;
  const end = to || t.last_due;  // the last day that has ended: a gap shows as missing
  $("to").value = end;
  let start = from || addDays(end, -41);
  if (start < t.production_date) start = t.production_date;
  $("from").value = start;
  selected = period || null;
  await load();
}

async function load() {
  writeHash();
  const t = tenant;
  $("tenant-name").textContent = `${t.name} (${t.id})`;
  $("tenant-meta").textContent = ` · ${t.timezone} · billed from ${t.production_date}`;
  $("tenant-head").classList.remove("hidden");
  const q = `from=${$("from").value}&to=${$("to").value}`;
  notice("Loading…");
  const mine = ++loads;
  try {
    const [cal, ser] = await Promise.all([
      api(`api/tenants/${t.id}/calendar?${q}`), loadSeries()]);
    if (mine !== loads) return;
    renderCalendar(cal);
    const count = (st) => cal.days.filter((d) => d.state === st).length;
    $("tenant-meta").textContent = ` · ${t.timezone} · billed from ${t.production_date} · ` +
      `${cal.from} … ${cal.to}: ${count("published")} published, ${count("restated")} restated, ` +
      `${count("missing")} missing, ${count("failed")} failed`;
    notice(cal.airflow === "read" ? "" : cal.airflow, cal.airflow !== "read");
    series = ser;
    renderChartControls();
    if (selected) await openPeriod(selected);
    else $("period").classList.add("hidden");
  } catch (e) {
    notice(e.message, true);
  }
}

function loadSeries() {
  const scope = $("chart-scope").value || "";
  return api(`api/tenants/${tenant.id}/series?from=${$("from").value}&to=${$("to").value}` +
             `&scope=${encodeURIComponent(scope)}`);
}

function renderCalendar(cal) {
  const byMonth = new Map();
  for (const d of cal.days) {
    const m = d.day.slice(0, 7);
    if (!byMonth.has(m)) byMonth.set(m, []);
    byMonth.get(m).push(d);
  }
  const monthInfo = new Map(cal.months.map((m) => [m.month, m]));
  const html = [];
  for (const [m, days] of byMonth) {
    const info = monthInfo.get(m);
    const first = new Date(m + "-01T00:00:00Z");
    const lead = (first.getUTCDay() + 6) % 7; // Monday first
    const monthDays = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate();
    const have = new Map(days.map((d) => [d.day, d]));
    const cells = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"].map((x) => `<div class="dow">${x}</div>`);
    for (let i = 0; i < lead; i++) cells.push('<div class="day out"></div>');
    for (let i = 1; i <= monthDays; i++) {
      const iso = `${m}-${String(i).padStart(2, "0")}`;
      const d = have.get(iso);
      if (!d) { cells.push(`<div class="day out muted">${i}</div>`); continue; }
      const cls = STATE_CLASS[d.state] || "";
      const v = d.version ? `<span class="v">v${d.version}</span>` : "";
      const tip = `${iso}: ${d.state}${d.version ? " (v" + d.version + ")" : ""}` +
        (d.run_id ? ` · run ${d.run_id}` : "") +
        (d.rejected ? ` · ${d.rejected} rejected` : "") + (d.fallbacks ? ` · ${d.fallbacks} fallbacks` : "");
      cells.push(`<div class="day ${cls}${selected === iso ? " selected" : ""}" data-day="${iso}" ` +
                 `data-state="${esc(d.state)}" data-version="${d.version ?? ""}" title="${esc(tip)}">` +
                 `${i}${v}</div>`);
    }
    let state = "";
    if (info) {
      const cls = info.complete ? "ok" : (info.missing.length ? "bad" : "");
      state = `<div class="month-state ${cls}" data-month-state="${m}">${esc(info.complete ?
        `complete · v${info.version}` : info.missing.length ?
        `missing ${info.missing.length} day(s): ${compact(info.missing)}` :
        info.not_due ? "in progress" : "days complete, month not written")}</div>`;
    }
    const link = info && info.version ? `<a data-month="${m}">${monthName(m)}</a>` :
      `<span>${monthName(m)}</span>`;
    html.push(`<div class="month"><div class="month-head">${link}${state}</div>` +
              `<div class="grid">${cells.join("")}</div></div>`);
  }
  $("calendar").innerHTML = html.join("");
  $("calendar").classList.remove("hidden");
}

function compact(days) {
  const out = []; let a = null, b = null;
  for (const d of days) {
    if (b && addDays(b, 1) === d) { b = d; continue; }
    if (a) out.push(a === b ? a.slice(8) : `${a.slice(8)}–${b.slice(8)}`);
    a = b = d;
  }
  if (a) out.push(a === b ? a.slice(8) : `${a.slice(8)}–${b.slice(8)}`);
  return out.join(", ");
}

function monthName(m) {
  return new Date(m + "-01T00:00:00Z").toLocaleString("en", {month: "long", year: "numeric", timeZone: "UTC"});
}

async function openPeriod(label) {
  selected = label;
  writeHash();
  document.querySelectorAll(".day.selected").forEach((e) => e.classList.remove("selected"));
  const cell = document.querySelector(`.day[data-day="${label}"]`);
  if (cell) cell.classList.add("selected");
  let p;
  const mine = ++loads;
  try {
    p = await api(`api/tenants/${tenant.id}/periods/${label}`);
  } catch (e) {
    notice(e.message, true);
    return;
  }
  if (mine !== loads) return;
  renderPeriod(p);
  $("period").scrollIntoView({block: "start"});
  window.scrollBy(0, -60);
}

function renderPeriod(p) {
  $("period").classList.remove("hidden");
  $("period").dataset.period = p.period;
  $("period-title").textContent = `${tenant.name} · ${p.kind === "daily" ? "day" : "month"} ${p.period}`;
  if (!p.published) {
    $("period-badges").innerHTML = '<span class="badge bad">not published</span>';
    for (const t of ["values", "audit", "quality", "files"]) $("tab-" + t).innerHTML =
      '<p class="muted">No published files for this period.</p>';
    renderVersions(p);
    return;
  }
  const verified = p.verify.length === 0;
  $("period-badges").innerHTML =
    `<span class="badge ${p.version > 1 ? "rest" : "ok"}" id="version-badge">v${p.version}` +
    `${p.version > 1 ? " · restated" : ""}</span>` +
    `<span class="badge ${verified ? "ok" : "bad"}" id="verify-badge">${verified ?
      "verify: every file matches its manifest" : "verify: " + p.verify.length + " problem(s)"}</span>` +
    (p.period_bounds.start ? `<span class="badge">${esc(p.period_bounds.start)} → ${esc(p.period_bounds.end)} UTC</span>` : "");
  renderValues(p);
  renderAudit(p);
  renderQuality(p);
  renderFiles(p);
  renderVersions(p);
}

function renderValues(p) {
  const metrics = [...new Set(p.billing.map((r) => r.metric))];
  const rows = [];
  for (const m of metrics) {
    const part = p.billing.filter((r) => r.metric === m);
    const groups = [...new Set(part.map((r) => r.group))].sort();
    rows.push(`<tr class="metric-row"><th>${esc(m)}</th><th>Region</th>` +
              groups.map((g) => `<th class="num">${GROUP[g] || "Group " + g}</th>`).join("") +
              (groups.length < 2 ? "<th></th>" : "") + "</tr>");
    const keys = [];
    for (const r of part) {
      const k = r.scope + "|" + r.region;
      if (!keys.includes(k)) keys.push(k);
    }
    for (const k of keys) {
      const [scope, region] = k.split("|");
      const first = part.find((r) => r.scope === scope && r.region === region);
      const cells = groups.map((g) => {
        const r = part.find((x) => x.scope === scope && x.region === region && x.group === g);
        return `<td class="num" data-metric="${esc(m)}" data-scope="${esc(scope)}" ` +
               `data-region="${esc(region)}" data-group="${g}">${r ? r.value : ""}</td>`;
      });
      rows.push(`<tr><td>${esc(first.scope_name)}${scope ? ` <span class="muted small">${esc(scope)}</span>` : ""}</td>` +
                `<td>${esc(region)}</td>${cells.join("")}${groups.length < 2 ? "<td></td>" : ""}</tr>`);
    }
  }
  $("tab-values").innerHTML = `<p class="muted small">MessageSize per metric, scope and region as in the ` +
    `billing files (AgentGroupName 1: concurrent peak, ports or minutes; 2: enabled).</p>` +
    `<table id="values-table"><tbody>${rows.join("")}</tbody></table>`;
}

function agentChip(p, id) {
  const a = p.agents[String(id)];
  return `<span class="agent" data-agent="${id}"><b>${id}</b>` +
    (a ? ` ${esc(a.username)} · ${esc(a.employee_id)}` : ' <span class="muted">no Person row</span>') + "</span>";
}

function renderAudit(p) {
  const rows = p.audit.map((r) => `<tr><td>${esc(r.metric)}</td><td>${esc(r.scope || "tenant")}</td>` +
    `<td>${esc(r.region)}</td><td>${GROUP[r.group] || r.group}</td><td class="num">${r.value}</td>` +
    `<td>${esc(r.peak_first)}</td><td>${esc(r.peak_last)}</td>` +
    `<td><div class="agents">${r.agents.map((a) => agentChip(p, a)).join("")}</div></td></tr>`);
  $("tab-audit").innerHTML = `<p class="muted small">Peak seconds in UTC. Agents: for concurrent rows those active at the first peak second, for enabled rows those counted; user name and employee id from the period's agent_resource snapshot.</p>` +
    `<table id="audit-table"><thead><tr><th>Metric</th><th>Scope</th><th>Region</th><th>Group</th>` +
    `<th class="num">Value</th><th>Peak first at</th><th>Peak last at</th><th>Agents</th></tr></thead>` +
    `<tbody>${rows.join("")}</tbody></table>`;
}

function kvTable(obj, title, empty) {
  const flat = [];
  for (const [k, v] of Object.entries(obj || {})) {
    if (v && typeof v === "object") for (const [k2, n] of Object.entries(v)) flat.push([`${k} · ${k2}`, n]);
    else flat.push([k, v]);
  }
  return `<div><h3>${title}</h3>${flat.length ? `<table><tbody>${flat.map(([k, n]) =>
    `<tr><td>${esc(k)}</td><td class="num">${esc(n)}</td></tr>`).join("")}</tbody></table>` :
    `<p class="muted">${empty}</p>`}</div>`;
}

function renderQuality(p) {
  const verify = p.verify.length ? `<ul class="bad-text">${p.verify.map((x) => `<li>${esc(x)}</li>`).join("")}</ul>` :
    '<p class="ok-text">Every file matches its manifest (size and SHA-256).</p>';
  const extra = Object.keys(p.extra || {}).length ?
    kvTable(Object.fromEntries(Object.entries(p.extra).map(([k, v]) => [k, Array.isArray(v) ? v.length + " item(s)" : v])),
            "Other manifest facts", "") : "";
  $("tab-quality").innerHTML = `<div class="kv">` +
    kvTable(p.rejected, "Rejected rows (left out)", "No row rejected.") +
    kvTable(p.fallbacks, "Attribution fallbacks (counted in the default BU)", "No fallback.") +
    kvTable(p.inputs, "Input rows per dataset", "") +
    `<div><h3>bds verify</h3>${verify}</div>${extra}</div>`;
}

function fileUrl(p, name, version) {
  return `api/tenants/${tenant.id}/periods/${p.period}/files/${encodeURIComponent(name)}` +
    (version ? `?version=${version}` : "");
}

function renderFiles(p) {
  const rows = p.files.map((f) => `<tr><td><a class="dl" download="${esc(f.name)}" ` +
    `href="${fileUrl(p, f.name)}" data-file="${esc(f.name)}">${esc(f.name)}</a></td>` +
    `<td class="num">${f.rows}</td><td class="num">${f.bytes}</td><td><code>${esc(f.sha256.slice(0, 16))}…</code></td></tr>`);
  rows.push(`<tr><td><a class="dl" download="manifest.json" href="${fileUrl(p, "manifest.json")}" ` +
            `data-file="manifest.json">manifest.json</a></td><td></td><td></td><td><code>${esc(p.manifest_sha256.slice(0, 16))}…</code></td></tr>`);
  $("tab-files").innerHTML = `<table id="files-table"><thead><tr><th>File</th><th class="num">Rows</th>` +
    `<th class="num">Bytes</th><th>SHA-256</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function renderVersions(p) {
  const vs = [...(p.versions || [])].reverse();
  if (!vs.length) { $("tab-versions").innerHTML = '<p class="muted">Never published.</p>'; return; }
  const html = vs.map((v) => {
    const corr = v.corrections.length ? `<table class="corrections" data-version="${v.number}"><thead><tr>` +
      `<th>RecordDate</th><th>Tier3AccountID</th><th>Region</th><th>Metric</th><th>Group</th>` +
      `<th class="num">Old</th><th class="num">New</th><th class="num">Change</th></tr></thead><tbody>` +
      v.corrections.map((c) => {
        const o = Number(c.OldMessageSize), n = Number(c.NewMessageSize);
        return `<tr><td>${esc(c.RecordDate)}</td><td>${esc(c.Tier3AccountID || "tenant")}</td>` +
          `<td>${esc(c.Region)}</td><td>${esc(c.MetricName)}</td><td>${esc(c.AgentGroupName)}</td>` +
          `<td class="num">${esc(c.OldMessageSize || "–")}</td><td class="num ${n > o ? "up" : "down"}">${esc(c.NewMessageSize || "–")}</td>` +
          `<td class="num">${c.OldMessageSize && c.NewMessageSize ? (n > o ? "+" : "") + (n - o) : ""}</td></tr>`;
      }).join("") + "</tbody></table>" :
      (v.number > 1 && v.corrections_file ? '<p class="muted">No MessageSize changed (names or rows only).</p>' : "");
    const files = v.current ? "" : `<p class="small">Kept files: ${v.files.map((f) =>
      `<a class="dl" download="${esc(f)}" href="${fileUrl(p, f, v.number)}">${esc(f)}</a>`).join(", ")}</p>`;
    return `<div class="version"><h3>v${v.number}${v.current ? " · current" : ""}` +
      `${v.number === 1 ? " · first publication" : ""}</h3>` +
      `<p class="small muted">manifest SHA-256 <code>${esc(v.sha256)}</code>` +
      (v.supersedes ? `<br>supersedes <code>${esc(v.supersedes)}</code>` : "") + "</p>" +
      (v.corrections_file ? `<p class="small">Corrections v${v.number - 1} → v${v.number}: ` +
        `<a class="dl" download href="${fileUrl(p, v.corrections_file)}">${esc(v.corrections_file)}</a></p>` : "") +
      corr + files + "</div>";
  });
  $("tab-versions").innerHTML = html.join("");
}

function renderChartControls() {
  const scopes = tenant.scopes;
  const sel = $("chart-scope");
  if (sel.dataset.tenant !== tenant.id) {
    sel.innerHTML = scopes.map((s) => `<option value="${esc(s.id)}">${esc(s.name)}${s.id ? " (" + esc(s.id) + ")" : ""}</option>`).join("");
    $("chart-metric").innerHTML = tenant.metrics.map((m) => `<option>${esc(m)}</option>`).join("");
    sel.dataset.tenant = tenant.id;
  }
  drawChart();
}

function drawChart() {
  $("chart-card").classList.remove("hidden");
  const metric = $("chart-metric").value;
  const part = series.series.filter((s) => s.metric === metric);
  const regions = [...new Set(part.map((s) => s.region))];
  const datasets = part.map((s) => {
    const colour = COLOURS[regions.indexOf(s.region) % COLOURS.length];
    return {label: `${s.region} · ${s.group === 1 ? "concurrent" : s.group === 2 ? "enabled" : "group " + s.group}`,
            data: s.values, borderColor: colour, backgroundColor: colour,
            borderDash: s.group === 2 ? [6, 4] : [], spanGaps: false, tension: 0.15, pointRadius: 2};
  });
  if (chart) chart.destroy();
  chart = new Chart($("chart"), {
    type: "line", data: {labels: series.days, datasets},
    options: {responsive: true, maintainAspectRatio: false, animation: false,
              interaction: {mode: "index", intersect: false},
              scales: {y: {beginAtZero: true, title: {display: true, text: metric}}},
              plugins: {legend: {position: "bottom"}}}});
}

document.addEventListener("click", (e) => {
  const day = e.target.closest(".day[data-day]");
  if (day && day.dataset.version) { openPeriod(day.dataset.day); return; }
  if (day && ["failed", "running", "waiting for readiness"].includes(day.dataset.state)) {
    openPeriod(day.dataset.day); return;
  }
  const month = e.target.closest("[data-month]");
  if (month) { openPeriod(month.dataset.month); return; }
  const tab = e.target.closest(".tabs button");
  if (tab) {
    document.querySelectorAll(".tabs button").forEach((b) => b.classList.toggle("active", b === tab));
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("hidden", t.id !== "tab-" + tab.dataset.tab));
  }
});
$("show").addEventListener("click", () => {
  const id = $("tenant-search").value.trim();
  if (tenant && id === tenant.id) { load(); return; }
  pick(id, $("from").value || null, $("to").value || null, null);
});
$("tenant-search").addEventListener("change", () => {
  const id = $("tenant-search").value.trim();
  if (!tenant || id !== tenant.id) pick(id, $("from").value || null, $("to").value || null, null);
});
$("chart-metric").addEventListener("change", drawChart);
$("chart-scope").addEventListener("change", async () => { series = await loadSeries(); drawChart(); });
init();
