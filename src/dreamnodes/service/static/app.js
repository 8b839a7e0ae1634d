// The run log page of `dreamnodes serve`: plain JavaScript, no build step, nothing fetched
// from the internet. The forms are drawn by the small renderer below rather than a vendored
// JSON-Schema form library: the maintained ones (react-jsonschema-form, JSON Forms) need React
// or Angular and a bundler, and json-editor alone is ~1 MB; the node schemas use few features
// (labelled options as oneOf const/title, strings, numbers, integers, booleans, arrays of
// strings, defaults), which fit in ~100 lines that ship with the package.
"use strict";
const $ = (sel) => document.querySelector(sel);
const PAGE = { "X-Requested-With": "dreamnodes", "Content-Type": "application/json" };
let nodes = {};

async function api(path, options = {}) {
  const answer = await fetch(path, { credentials: "same-origin", ...options,
    headers: { ...PAGE, ...(options.headers || {}) } });
  const body = await answer.json().catch(() => ({}));
  if (answer.status === 401) { show("sign-in"); throw new Error("signed out"); }
  return { status: answer.status, body };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function show(id) {
  for (const s of ["sign-in", "log", "form-page"]) $("#" + s).hidden = s !== id;
  $("#nav").hidden = id === "sign-in";
}

// ---------------------------------------------------------------- the run log
function media(output) {
  const assets = (output && output.assets) || {};
  if (assets.video) return el("video", { src: assets.video, controls: "", muted: "", loop: "", playsinline: "" });
  if (assets.image) return el("img", { src: assets.image, class: "asset", alt: "generated image" });
  return null;
}

function runRow(run) {
  const retry = run.links && run.links.retry
    ? el("button", { type: "button", class: "retry", "data-run": run.id, text: "Retry" }) : null;
  const result = run.error ? el("span", { class: "error", text: run.error.message || run.error.code }) : media(run.output);
  return el("tr", { id: "run-" + run.id, "data-status": run.status, "data-retry-of": run.retry_of },
    el("td", { text: run.id }), el("td", { text: run.node }),
    el("td", { class: "status status-" + run.status, text: run.status }),
    el("td", { text: (run.started_at || "").replace("T", " ").slice(0, 19) }),
    el("td", { text: run.seconds == null ? "" : run.seconds.toFixed(1) + " s" }),
    el("td", { text: run.generation_id || "" }), el("td", {}, result), el("td", {}, retry));
}

// Where runs are done: this server, or Celery workers (each one's health, the queue's depth).
async function refreshEngine() {
  const { body } = await api("/v1/engine");
  const line = $("#engine");
  if (body.error) { line.textContent = body.error; line.className = "engine error"; return; }
  if (body.engine !== "celery") { line.textContent = "Runs are done by this server."; line.className = "engine"; return; }
  const workers = (body.workers || []).map((w) =>
    `${w.name}: ${w.alive ? "alive" : "not seen for " + w.seen_seconds_ago + " s"}, ${w.running} running, ${w.done} done`);
  const queue = body.queue || {};
  line.textContent = `Celery: ${body.alive} of ${workers.length} workers alive; ${queue.queued} queued,` +
    ` ${queue.unacknowledged} held by workers; ${body.runs_under_way} runs under way. ` + workers.join("; ");
  line.className = body.alive ? "engine" : "engine error";
}

async function refresh() {
  if ($("#log").hidden) return;
  refreshEngine().catch(() => {});
  const query = new URLSearchParams({ limit: "100" });
  if ($("#filter-status").value) query.set("status", $("#filter-status").value);
  if ($("#filter-node").value) query.set("node", $("#filter-node").value);
  const { body } = await api("/v1/runs?" + query);
  const rows = (body.runs || []).map(runRow);
  const tbody = $("#runs tbody");
  // Keep a playing video: only rows whose status changed are replaced.
  const old = new Map([...tbody.children].map((r) => [r.id, r]));
  tbody.replaceChildren(...rows.map((r) => {
    const same = old.get(r.id);
    return same && same.dataset.status === r.dataset.status && r.dataset.status !== "running" ? same : r;
  }));
}

async function retry(runId, button) {
  button.disabled = true;
  const { status, body } = await api(`/v1/runs/${runId}/retry`, { method: "POST", body: "{}" });
  if (status >= 400) { button.disabled = false; alert((body.error || {}).message || "retry failed"); }
  await refresh();
}

// ---------------------------------------------------------------- forms from schemas
function options(schema) {
  if (Array.isArray(schema.oneOf) && schema.oneOf.every((o) => "const" in o))
    return schema.oneOf.map((o) => [o.const, o.title || String(o.const)]);
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => [v, String(v)]);
  return null;
}

function fieldFor(name, schema, required) {
  const id = "field-" + name;
  const label = el("label", { for: id, text: (schema.title || name) + (required ? " *" : "") });
  const choices = options(schema);
  let input;
  if (choices) {
    input = el("select", { id, name });
    if (!required || !("default" in schema)) input.append(el("option", { value: "", text: "" }));
    choices.forEach(([value, text], i) => {
      const option = el("option", { value: String(i), text });
      option.dataset.value = JSON.stringify(value);
      if ("default" in schema && JSON.stringify(schema.default) === JSON.stringify(value)) option.selected = true;
      input.append(option);
    });
  } else if (schema.type === "boolean") {
    input = el("input", { id, name, type: "checkbox" });
    input.checked = schema.default === true;
  } else if (schema.type === "array") {
    input = el("textarea", { id, name, rows: "2", placeholder: "one per line" });
    if (Array.isArray(schema.default)) input.value = schema.default.join("\n");
  } else if (schema.type === "integer" || schema.type === "number") {
    input = el("input", { id, name, type: "number", step: schema.type === "integer" ? "1" : "any",
      min: schema.minimum, max: schema.maximum });
    if ("default" in schema) input.value = schema.default;
  } else {
    const long = (schema.maxLength || 0) > 200;
    input = el(long ? "textarea" : "input", { id, name, type: long ? undefined : "text" });
    if ("default" in schema) input.value = schema.default;
  }
  input.dataset.kind = choices ? "choice" : schema.type || "string";
  const hint = schema.description ? el("div", { class: "hint", text: schema.description }) : null;
  return el("div", { class: "field", "data-field": name }, label, input, hint,
    el("div", { class: "error field-error", role: "alert" }));
}

function readForm(schema) {
  const params = {};
  for (const [name] of Object.entries(schema.properties || {})) {
    const input = document.getElementById("field-" + name);
    if (!input) continue;
    const kind = input.dataset.kind;
    if (kind === "choice") {
      const option = input.selectedOptions[0];
      if (option && option.dataset.value !== undefined) params[name] = JSON.parse(option.dataset.value);
    } else if (kind === "boolean") params[name] = input.checked;
    else if (kind === "array") {
      const lines = input.value.split("\n").map((s) => s.trim()).filter(Boolean);
      if (lines.length) params[name] = lines;
    } else if (kind === "integer" || kind === "number") {
      if (input.value !== "") params[name] = Number(input.value);
    } else if (input.value !== "") params[name] = input.value;
  }
  return params;
}

function openForm(nodeId) {
  const node = nodes[nodeId];
  if (!node) return;
  const schema = node.input_schema;
  $("#form-title").textContent = node.title || nodeId;
  $("#form-description").textContent = node.description || "";
  const required = new Set(schema.required || []);
  const skip = new Set(["callback_url"]);
  $("#fields").replaceChildren(...Object.entries(schema.properties || {})
    .filter(([name]) => !skip.has(name))
    .map(([name, field]) => fieldFor(name, field, required.has(name))));
  $("#node-form").dataset.node = nodeId;
  $("#form-error").textContent = "";
  $("#form-run").replaceChildren();
  show("form-page");
}

async function submitForm(event) {
  event.preventDefault();
  const nodeId = event.target.dataset.node;
  const params = readForm(nodes[nodeId].input_schema);
  document.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
  $("#form-error").textContent = "";
  const { status, body } = await api(`/v1/nodes/${nodeId}/runs`, { method: "POST",
    body: JSON.stringify({ params, wait: nodes[nodeId].kind === "create" ? "poll" : undefined }) });
  if (status === 422) {
    const error = body.error || {};
    $("#form-error").textContent = error.message || "invalid input";
    for (const f of error.fields || [error.field]) {
      const box = document.querySelector(`[data-field="${f}"] .field-error`);
      if (box) box.textContent = error.message;
    }
    return;
  }
  follow(body.id);
}

async function follow(runId) {
  const { body } = await api(`/v1/runs/${runId}`, { headers: { Prefer: "wait=20" } });
  const where = $("#form-run");
  const result = body.error ? el("p", { class: "error", text: body.error.message }) : media(body.output);
  where.replaceChildren(...[el("p", { class: "run-status status-" + body.status,
    text: `${body.id}: ${body.status}` }), result].filter(Boolean));
  if (body.status === "running" && !$("#form-page").hidden) setTimeout(() => follow(runId), 500);
}

// ---------------------------------------------------------------- start
async function start() {
  const { body } = await api("/v1/nodes");
  for (const node of body.nodes || []) {
    nodes[node.id] = node;
    $("#node-picker").append(el("option", { value: node.id, text: node.title || node.id }));
    $("#filter-node").append(el("option", { value: node.id, text: node.id }));
  }
  route();
}

function route() {
  const hash = location.hash.slice(1);
  if (hash.startsWith("node/")) openForm(hash.slice(5));
  else { show("log"); refresh(); }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await fetch("/v1/session", { method: "POST", headers: PAGE, credentials: "same-origin",
      body: JSON.stringify({ token: $("#token").value }) });
    if (answer.ok) { $("#token").value = ""; start(); } else $("#sign-in-error").textContent = "Not this server's token.";
  });
  $("#sign-out").addEventListener("click", async () => { await fetch("/v1/session", { method: "DELETE" }); show("sign-in"); });
  $("#node-picker").addEventListener("change", (e) => { if (e.target.value) location.hash = "node/" + e.target.value; e.target.value = ""; });
  $("#filter-status").addEventListener("change", refresh);
  $("#filter-node").addEventListener("change", refresh);
  $("#runs").addEventListener("click", (e) => { if (e.target.classList.contains("retry")) retry(e.target.dataset.run, e.target); });
  $("#node-form").addEventListener("submit", submitForm);
  window.addEventListener("hashchange", route);
  // Live updates: every half second while a run in the table is running, else every 2 s.
  const tick = async () => {
    await refresh().catch(() => {});
    setTimeout(tick, document.querySelector('#runs tr[data-status="running"]') ? 500 : 2000);
  };
  setTimeout(tick, 2000);
  const signed = await fetch("/v1/session", { credentials: "same-origin" });
  if (signed.ok) start(); else show("sign-in");
});
