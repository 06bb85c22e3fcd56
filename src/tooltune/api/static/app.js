// tooltune dashboard: one page over the job API (/v1). No build step: a plain ES module and the
// vendored Chart.js (window.Chart). Reads need no token on loopback; changes send the token typed
// in the header (kept in this browser's localStorage).

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const pct = (v) => (v == null ? "–" : `${(100 * v).toFixed(1)}%`);
const num = (v, d = 1) => (v == null ? "–" : Number(v).toFixed(d));
const ACTIVE = new Set(["pending", "running"]);
const DEFAULT_JOB = { base_model: "builtin", data_dir: "data", method: "full", max_steps: 50, logging_steps: 5 };

const streams = new Map(); // job id → EventSource
const charts = {};
let refreshTimer = null;

// ---- API ---------------------------------------------------------------------------------------

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const token = $("#token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(data.detail || `${res.status} ${res.statusText}`);
    err.status = res.status;
    err.body = data;
    throw err;
  }
  return data;
}

function flash(message, bad = false) {
  const box = $("#flash");
  box.textContent = message;
  box.className = bad ? "bad" : "";
  box.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => (box.hidden = true), bad ? 12000 : 5000);
}

function confirmDialog(title, html, okLabel = "Confirm") {
  const dialog = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-body").innerHTML = html;
  $("#confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

// ---- overview ------------------------------------------------------------------------------------

async function refreshOverview() {
  const [stats, jobs, models] = await Promise.all([api("/v1/stats"), api("/v1/jobs"), api("/v1/models")]);
  renderStats(stats);
  renderJobs(jobs);
  renderModels(models);
}

function renderStats(s) {
  $("#stat-datasets").textContent = s.datasets;
  $("#stat-running").textContent = (s.jobs.running || 0) + (s.jobs.pending || 0);
  $("#stat-deployed").innerHTML = s.deployed.length ? `${s.deployed.length} <small>${esc(s.deployed.join(", "))}</small>` : "0";
  const d = s.last_decision;
  $("#stat-decision").innerHTML = d
    ? `<span class="badge ${esc(d.outcome)}">${esc(d.outcome)}</span> <small>${esc(d.candidate)} vs ${esc(d.baseline || "nothing deployed")}, ${d.checks.filter((c) => c.passed).length}/${d.checks.length} checks passed</small>`
    : "none yet";
}

function lastLoss(job) {
  for (let i = job.losses.length - 1; i >= 0; i--) if (job.losses[i].loss != null) return job.losses[i].loss;
  return null;
}

function jobCells(job) {
  const width = Math.round(100 * (job.progress || 0));
  const total = job.total_steps ?? "?";
  const error = job.error ? `<span class="error">${esc(job.error)}</span>` : "";
  return `
    <td>#${job.id}<br><small class="notes">${esc((job.config.base_model || "").split("/").pop())} · ${esc(job.config.method)}</small></td>
    <td><span class="badge ${esc(job.status)}">${esc(job.status)}</span>${error}</td>
    <td><span class="bar ${esc(job.status)}" data-progress="${job.progress}"><span class="fill" style="width:${width}%"></span></span><span class="steps">${job.step} / ${total}</span></td>
    <td>${num(job.epoch, 2)}</td>
    <td>${num(lastLoss(job), 4)}</td>
    <td>${job.eta_s == null ? "–" : `${Math.round(job.eta_s)} s`}</td>
    <td>${ACTIVE.has(job.status) && !job.cancel_requested ? `<button data-cancel="${job.id}">Cancel</button>` : job.cancel_requested && ACTIVE.has(job.status) ? "cancelling…" : ""}</td>`;
}

function renderJobs(jobs) {
  const body = $("#jobs tbody");
  body.innerHTML = jobs.length ? "" : `<tr><td colspan="7" class="empty">No jobs yet.</td></tr>`;
  for (const job of jobs) {
    const row = document.createElement("tr");
    row.dataset.job = job.id;
    row.innerHTML = jobCells(job);
    body.append(row);
    if (ACTIVE.has(job.status)) follow(job.id);
  }
}

function follow(id) {
  if (streams.has(id)) return;
  const source = new EventSource(`/v1/jobs/${id}/events`);
  streams.set(id, source);
  source.addEventListener("progress", (e) => {
    const job = JSON.parse(e.data);
    const row = document.querySelector(`#jobs tr[data-job="${id}"]`);
    if (row) row.innerHTML = jobCells(job);
  });
  source.addEventListener("end", () => {
    source.close();
    streams.delete(id);
    refreshOverview().catch(showError);
  });
  source.onerror = () => { source.close(); streams.delete(id); };
}

function renderModels(models) {
  const body = $("#models tbody");
  body.innerHTML = models.length ? "" : `<tr><td colspan="6" class="empty">No models registered yet.</td></tr>`;
  for (const m of models) {
    const ref = `${m.name}@${m.version}`;
    const row = document.createElement("tr");
    row.dataset.model = ref;
    const canDeploy = m.status !== "archived" && !(m.live_services.length === 1 && m.live_services[0] === "*");
    const rollback = m.live_services.length > 0; // back to what was live before this one
    row.innerHTML = `
      <td><b>${esc(m.name)}</b>@${esc(m.version)}</td><td>${esc(m.kind)}</td>
      <td><span class="badge ${esc(m.status)}" data-status>${esc(m.status)}</span>${staleCell(m)}</td>
      <td>${m.live_services.length ? esc(m.live_services.map((s) => (s === "*" ? "every service" : s)).join(", ")) : "–"}</td>
      <td>${m.job_id ? `#${m.job_id}` : "–"}</td>
      <td>${canDeploy ? `<button data-deploy="${esc(ref)}">Deploy…</button>` : ""}
          ${rollback ? `<button data-rollback="${esc(m.name)}">Roll back…</button>` : ""}</td>`;
    body.append(row);
  }
}

// A version whose service's live tools changed since training: stale (breaking; its requests fall
// back) or drifted (minor/patch), why, and the command that migrates its data to the live tools.
function staleCell(m) {
  return (m.drift || []).map((d) => `<div class="drift ${d.rating === "breaking" ? "stale" : ""}" data-drift="${esc(d.service)}">
      <span class="badge ${d.rating === "breaking" ? "stale" : "partial"}">${d.rating === "breaking" ? "stale" : "drifted"}: ${esc(d.service)}</span>
      <small class="notes">${esc(driftSummary(d))}</small>
      ${d.migrate_command ? `<code class="migrate">${esc(d.migrate_command)}</code>` : ""}</div>`).join("");
}

function driftSummary(d) {
  const order = { breaking: 0, minor: 1, patch: 2 };
  const changes = [...d.changes].sort((a, b) => (order[a.rating] ?? 3) - (order[b.rating] ?? 3));
  const shown = changes.slice(0, 3).map((c) => `${c.param ? `${c.tool}.${c.param}` : c.tool} ${c.detail}`);
  return `${d.rating}: ${shown.join("; ")}${changes.length > 3 ? ` (+${changes.length - 3} more)` : ""}`;
}

// ---- actions -------------------------------------------------------------------------------------

async function startJob(event) {
  event.preventDefault();
  let config;
  try {
    config = JSON.parse($("#job-config").value);
  } catch (e) {
    return flash(`The TrainConfig is not valid JSON: ${e.message}`, true);
  }
  localStorage.setItem("tooltune.jobConfig", $("#job-config").value);
  const name = $("#job-register").value.trim();
  try {
    const job = await api(`/v1/jobs${name ? `?register=${encodeURIComponent(name)}` : ""}`, { method: "POST", body: config });
    flash(`Job #${job.id} started.`);
    await refreshOverview();
  } catch (e) {
    showError(e);
  }
}

async function cancelJob(id) {
  if (!(await confirmDialog(`Cancel job #${id}?`, "<p>Training stops at once; nothing is saved.</p>", "Cancel job"))) return;
  try {
    await api(`/v1/jobs/${id}/cancel`, { method: "POST" });
    flash(`Job #${id}: cancel requested.`);
    await refreshOverview();
  } catch (e) {
    showError(e);
  }
}

function checksTable(decision) {
  const rows = decision.checks.map((c) => `<tr><td>${esc(c.name)}</td><td>${esc(c.subject ?? "")}</td><td>${esc(c.scope)}</td>
    <td><span class="badge ${c.passed ? "pass" : "fail"}">${c.passed ? "pass" : "fail"}</span></td>
    <td>${pct(c.observed)}</td><td>${pct(c.threshold)}</td><td>${pct(c.baseline)}</td><td>${num(c.delta_points)}</td></tr>`);
  return `<table><thead><tr><th>Check</th><th>Subject</th><th>Scope</th><th>Result</th><th>Candidate</th><th>Threshold</th><th>Baseline</th><th>Δ points</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

async function deployModel(ref) {
  const [name, version] = ref.split("@");
  if (!(await confirmDialog(`Deploy ${ref}?`, `<p>${esc(ref)} becomes the live version of <b>${esc(name)}</b> for every service, if its gate decision allows it.</p>`, "Deploy"))) return;
  try {
    await api(`/v1/models/${encodeURIComponent(name)}/${encodeURIComponent(version)}/deploy`, { method: "POST", body: {} });
    flash(`${ref} deployed.`);
  } catch (e) {
    if (e.status !== 409 || !e.body.decision) return showError(e);
    const d = e.body.decision;
    const html = `<p>The gates refused it: <span class="badge ${esc(d.outcome)}">${esc(d.outcome)}</span></p>${checksTable(d)}
      <p>Deploying anyway is recorded as forced in the deployment history.</p>`;
    if (!(await confirmDialog(`Deploy ${ref} anyway?`, html, "Deploy anyway (force)"))) return;
    try {
      await api(`/v1/models/${encodeURIComponent(name)}/${encodeURIComponent(version)}/deploy`, { method: "POST", body: { force: true, notes: "forced from the dashboard" } });
      flash(`${ref} deployed (forced).`);
    } catch (e2) {
      return showError(e2);
    }
  }
  await refresh();
}

async function rollbackModel(name) {
  if (!(await confirmDialog(`Roll back ${name}?`, `<p>The version live before the current one becomes live again.</p>`, "Roll back"))) return;
  try {
    const row = await api(`/v1/models/${encodeURIComponent(name)}/rollback`, { method: "POST", body: {} });
    flash(`${name} rolled back to ${row.version}.`);
    await refresh();
  } catch (e) {
    showError(e);
  }
}

function showError(e) {
  const fields = (e.body?.errors || []).map((p) => `${p.field}: ${p.message}`).join("; ");
  flash(e.status === 401 ? `${e.message} Type the API token in the header.` : fields ? `Invalid: ${fields}` : e.message, true);
}

// ---- comparisons ---------------------------------------------------------------------------------

async function showComparisons() {
  const rows = await api("/v1/comparisons");
  const body = $("#comparisons tbody");
  body.innerHTML = rows.length ? "" : `<tr><td colspan="6" class="empty">No comparisons yet (POST /v1/evaluations with a baseline records one).</td></tr>`;
  for (const c of rows) {
    const row = document.createElement("tr");
    row.innerHTML = `<td><a href="#/comparisons/${c.id}">#${c.id}</a></td><td>${esc(c.base)}${c.base_in_registry ? "" : ` <small class="notes">base model</small>`}</td><td><a href="#/comparisons/${c.id}">${esc(c.candidate)}</a></td>
      <td>${c.wins} / ${c.losses} / ${c.ties}</td><td><code>${esc(c.suite_version.slice(0, 12))}</code></td><td>${esc(new Date(c.created_at).toLocaleString())}</td>`;
    body.append(row);
  }
}

function chart(id, config) {
  charts[id]?.destroy();
  charts[id] = new Chart(document.getElementById(id), config);
}

async function showComparison(id) {
  const v = await api(`/v1/comparisons/${id}`);
  // A pipeline compares with the base model, which is not a registry version: shown by its spec.
  const base = v.base ? `${v.base.name}@${v.base.version}` : `${v.comparison.base} (base model)`;
  const cand = `${v.candidate.name}@${v.candidate.version}`;
  $("#cmp-title").textContent = `Comparison #${id}: ${cand} vs ${base}`;
  $("#cmp-notes").textContent = [`suite ${v.comparison.suite_version.slice(0, 12)}`,
    v.candidate_evaluation ? `candidate ${pct(v.candidate_evaluation.overall)} overall on ${v.candidate_evaluation.examples ?? "?"} examples` : "",
    v.base_evaluation ? `base ${pct(v.base_evaluation.overall)}` : "", ...v.notes].filter(Boolean).join(" · ");

  const cats = v.per_category.map((b) => b.category);
  chart("chart-categories", {
    type: "bar",
    data: { labels: cats, datasets: [
      { label: `base ${base}`, data: v.per_category.map((b) => (b.base == null ? null : 100 * b.base)), backgroundColor: "#98a2b3" },
      { label: `candidate ${cand}`, data: v.per_category.map((b) => (b.candidate == null ? null : 100 * b.candidate)), backgroundColor: "#2f5fd0" },
    ] },
    options: { animation: false, responsive: true, scales: { y: { min: 0, max: 100, title: { display: true, text: "accuracy %" } } } },
  });
  const c = v.comparison;
  chart("chart-wlt", {
    type: "bar",
    data: { labels: ["wins", "losses", "ties"], datasets: [{ label: "examples", data: [c.wins, c.losses, c.ties], backgroundColor: ["#1a7f37", "#c62828", "#98a2b3"] }] },
    options: { animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  const keys = ["latency_ms_p50", "latency_ms_p95"].filter((k) => v.latency[k] && (v.latency[k].base != null || v.latency[k].candidate != null));
  $("#latency-none").hidden = keys.length > 0;
  chart("chart-latency", {
    type: "bar",
    data: { labels: keys.map((k) => k.replace("latency_ms_", "")), datasets: [
      { label: "base", data: keys.map((k) => v.latency[k].base), backgroundColor: "#98a2b3" },
      { label: "candidate", data: keys.map((k) => v.latency[k].candidate), backgroundColor: "#2f5fd0" },
    ] },
    options: { animation: false, scales: { y: { beginAtZero: true, title: { display: true, text: "ms" } } } },
  });

  const d = v.decision;
  $("#cmp-outcome").innerHTML = d ? `<span class="badge ${esc(d.outcome)}" id="cmp-outcome-badge">${esc(d.outcome)}</span> <small class="notes">vs ${esc(d.baseline || "nothing deployed")}</small>` : `<small class="notes">no decision recorded</small>`;
  $("#checks tbody").innerHTML = d ? checksTable(d).match(/<tbody>([\s\S]*)<\/tbody>/)[1] : `<tr><td colspan="8" class="empty">No gate decision for ${esc(cand)}.</td></tr>`;
  const deploy = $("#cmp-deploy");
  deploy.hidden = v.candidate.live_services.includes("*");
  deploy.dataset.deploy = cand;

  $("#failing tbody").innerHTML = v.failing.length ? v.failing.map((f) => `<tr><td><code>${esc(f.id)}</code><br><small class="notes">${esc(f.split)}</small></td>
      <td>${esc(f.category)}</td><td>${esc(f.reason)}<br><small class="notes">${esc(f.message)}</small></td><td>${esc(f.request)}</td>
      <td><pre>${esc(JSON.stringify(f.expected))}</pre></td><td><pre class="raw">${esc(f.output)}</pre></td>
      <td>${f.base_correct == null ? "–" : f.base_correct ? "right" : "wrong"}</td></tr>`).join("")
    : `<tr><td colspan="7" class="empty">${v.notes.length ? esc(v.notes.join(" ")) : "The candidate got every example right."}</td></tr>`;
}

// ---- routing -------------------------------------------------------------------------------------

async function refresh() {
  const hash = location.hash || "#/";
  const match = hash.match(/^#\/comparisons\/(\d+)/);
  const view = match ? "comparison" : hash.startsWith("#/comparisons") ? "comparisons" : "overview";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.nav === (view === "overview" ? "overview" : "comparisons"));
  clearInterval(refreshTimer);
  try {
    if (view === "overview") {
      await refreshOverview();
      refreshTimer = setInterval(() => refreshOverview().catch(() => {}), 5000);
    } else if (view === "comparisons") await showComparisons();
    else await showComparison(match[1]);
  } catch (e) {
    showError(e);
  }
}

document.addEventListener("click", (e) => {
  const t = e.target.closest("button");
  if (!t) return;
  if (t.dataset.cancel) cancelJob(t.dataset.cancel);
  else if (t.dataset.deploy) deployModel(t.dataset.deploy);
  else if (t.dataset.rollback) rollbackModel(t.dataset.rollback);
});
$("#job-form").addEventListener("submit", startJob);
$("#token").value = localStorage.getItem("tooltune.token") || "";
$("#token").addEventListener("change", () => localStorage.setItem("tooltune.token", $("#token").value.trim()));
$("#job-config").value = localStorage.getItem("tooltune.jobConfig") || JSON.stringify(DEFAULT_JOB, null, 2);
window.addEventListener("hashchange", refresh);
refresh();
