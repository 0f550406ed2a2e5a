// The ia-agents console: live decisions with their debate, escalations to answer, the equity curve,
// the book and the team. Plain DOM, no framework, nothing fetched from outside the coordinator.
// Every text from the record (an assistant's reasoning included) is set as text, never as HTML.
"use strict";

const TOKEN_KEY = "ia-agents.token";
const MAX_ROWS = 300;
const state = { token: sessionStorage.getItem(TOKEN_KEY), decisions: new Map(), outcomes: new Map(), socket: null, refresh: null };

// The decision view (el, time, num, pct, action, outcomeOf, debateView, decisionRow, …) comes from
// decisions.js, loaded first.
const $ = (sel) => document.querySelector(sel);

// ---- the API ----
class Unauthorized extends Error { get name() { return "Unauthorized"; } }
async function api(path, options = {}) {
  const headers = Object.assign({ accept: "application/json" }, options.headers || {});
  if (state.token) headers.authorization = "Bearer " + state.token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401 || response.status === 403) throw new Unauthorized((await response.json()).error);
  if (!response.ok) throw new Error((await response.json().catch(() => ({}))).error || response.statusText);
  return response.json();
}

function askForToken(message) {
  if (state.socket) state.socket.close();
  $("#login-error").textContent = message || "";
  const dialog = $("#login");
  if (!dialog.open) dialog.showModal();
  $("#token").focus();
}

// ---- decisions and their debate ----
async function openDebate(row) {
  const load = async (id) => {
    const known = state.decisions.get(id);
    return known && known.transcript ? known : api(`/api/v1/decisions/${encodeURIComponent(id)}`);
  };
  try {
    await toggleDebate(row, load, (id) => state.outcomes.get(id));
  } catch (e) {
    if (e instanceof Unauthorized) askForToken(e.message);
  }
}

function applyFilters() {
  applyDecisionFilters($("#decisions"), $("#filter-action").value, $("#filter-outcome").value);
}

function addDecision(d, newest = true) {
  if (document.querySelector(`#decisions tr.decision[data-id="${CSS.escape(d.id)}"]`)) return;
  state.decisions.set(d.id, d);
  if (state.decisions.size > MAX_ROWS) state.decisions.delete(state.decisions.keys().next().value);
  const body = $("#decisions tbody");
  const row = decisionRow(d, openDebate);
  if (newest) body.prepend(row); else body.append(row);
  while (body.querySelectorAll("tr.decision").length > MAX_ROWS) {
    const last = body.lastElementChild;
    last.remove();
  }
  applyFilters();
}

// ---- escalations ----
function renderPending(items) {
  const list = $("#pending");
  list.replaceChildren(...items.map((e) => {
    const scores = Object.entries(e.scores || {}).map(([a, s]) => `${a} ${num(s)}`).join(" · ");
    const answer = (approve) => async (event) => {
      const card = event.currentTarget.closest("li");
      card.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      try {
        await api(`/api/v1/escalations/${encodeURIComponent(e.id)}/${approve ? "approve" : "reject"}`, { method: "POST" });
        card.querySelector(".status").textContent = approve ? "approval sent…" : "rejection sent…";
      } catch (err) {
        if (err instanceof Unauthorized) askForToken(err.message);
        card.querySelector(".status").textContent = "not sent: " + err.message;
        card.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      }
    };
    return el("li", { class: "escalation", "data-id": e.id },
      el("div", {}, el("strong", {}, e.symbol), " — the team proposes ", action(e.proposed), " (", scores, ")"),
      el("div", { class: "muted" }, `raised on the ${time(e.raisedAt)} UTC candle; ${e.timeoutSeconds} s to answer, then the policy's default action; id ${e.id}`),
      el("div", { class: "actions" },
        el("button", { class: "approve", type: "button", onclick: answer(true) }, "Approve"),
        el("button", { class: "reject", type: "button", onclick: answer(false) }, "Reject"),
        el("span", { class: "status muted" })));
  }));
  $("#escalation-count").textContent = String(items.length);
  $("#no-escalations").hidden = items.length > 0;
  focusLinked();
}

// a notification links to `/#escalation/ID`: that card is marked and scrolled to
function linkedEscalation() {
  const match = /^#escalation\/(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}
function focusLinked() {
  const id = linkedEscalation();
  if (!id) return;
  const card = [...document.querySelectorAll("#pending li, #resolved li")].find((li) => li.dataset.id === id);
  document.querySelectorAll(".linked").forEach((li) => li.classList.remove("linked"));
  if (card) { card.classList.add("linked"); card.scrollIntoView({ block: "center" }); }
  $("#linked-note").hidden = Boolean(card);
  $("#linked-note").textContent = card ? "" : `escalation ${id} is no longer pending (answered or timed out)`;
}

const pending = new Map();
function escalationOpened(e) { pending.set(e.id, e); renderPending([...pending.values()]); }
function escalationClosed(id, outcome, by) {
  pending.delete(id);
  state.outcomes.set(id, outcome);
  renderPending([...pending.values()]);
  const words = { approved: "approved", rejected: "rejected", timedOut: "timed out (default action)" };
  $("#resolved").prepend(el("li", { class: "resolution", "data-id": id, "data-outcome": outcome }, `${time(Date.now())} ${id}: ${words[outcome] || outcome}${by ? ` by ${by}` : ""}`));
  while ($("#resolved").children.length > 20) $("#resolved").lastElementChild.remove();
}

// ---- equity, book, team ----
function drawCurve(points) {
  const equity = points.map((p) => Number(p.equity));
  const svg = $("#equity"), dd = $("#drawdown");
  svg.replaceChildren(); dd.replaceChildren();
  if (equity.length < 2) { $("#equity-now").textContent = equity.length ? num(equity[0]) : "no snapshot yet"; return; }
  const lo = Math.min(...equity), hi = Math.max(...equity), span = hi - lo || 1;
  const x = (i) => (600 * i) / (equity.length - 1);
  const line = equity.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${(170 - (160 * (v - lo)) / span).toFixed(1)}`).join("");
  const ns = "http://www.w3.org/2000/svg";
  const path = (d, stroke, fill) => { const p = document.createElementNS(ns, "path"); p.setAttribute("d", d); p.setAttribute("stroke", stroke); p.setAttribute("fill", fill); p.setAttribute("vector-effect", "non-scaling-stroke"); return p; };
  svg.append(path(line, "#2f5bd3", "none"));
  let peak = -Infinity, worst = 0;
  const drawdowns = equity.map((v) => { peak = Math.max(peak, v); const d = peak > 0 ? (peak - v) / peak : 0; worst = Math.max(worst, d); return d; });
  const scale = worst || 1;
  dd.append(path("M0,0" + drawdowns.map((d, i) => `L${x(i).toFixed(1)},${((58 * d) / scale).toFixed(1)}`).join("") + "L600,0Z", "#b42318", "#f6d5d3"));
  $("#equity-now").textContent = `${num(equity[equity.length - 1])} now; max drawdown ${(100 * worst).toFixed(1)}%`;
}

function renderBook(portfolio, orders) {
  $("#positions tbody").replaceChildren(...(portfolio.positions || []).map((p) => el("tr", {}, el("td", {}, p.symbol), el("td", {}, p.quantity), el("td", {}, p.entryPrice))));
  $("#orders tbody").replaceChildren(...orders.map((o) => el("tr", {}, el("td", {}, time(o.at)), el("td", {}, o.symbol), el("td", {}, action(o.side)), el("td", {}, o.kind), el("td", {}, o.quantity), el("td", {}, o.status), el("td", {}, o.price || ""), el("td", {}, o.fee || ""))));
}

function renderTeam(items) {
  $("#assistants tbody").replaceChildren(...items.map((a) => {
    const last = a.lastOpinion;
    const seen = a.lastSeen ? `seen ${Math.max(0, Math.round((Date.now() - a.lastSeen) / 1000))} s ago` : "no heartbeat";
    return el("tr", { class: "assistant", "data-assistant": a.assistant },
      el("td", {}, a.assistant), el("td", {}, a.role || ""), el("td", {}, a.weight === undefined ? "—" : num(a.weight, 3)),
      el("td", {}, el("span", { class: a.healthy ? "dot ok" : "dot" }), a.healthy ? "healthy" : "missing", el("div", { class: "muted" }, seen)),
      el("td", {}, last ? [Number(last.confidence) === 0 ? "abstains" : [action(last.action), ` ${pct(last.confidence)}`], " — ", el("span", { class: "muted" }, last.reasoning)] : ""));
  }));
}

async function refresh() {
  try {
    const [curve, portfolio, orders, team] = await Promise.all([
      api("/api/v1/equity?limit=2000"), api("/api/v1/portfolio"), api("/api/v1/orders?limit=20"), api("/api/v1/assistants")]);
    drawCurve(curve.items);
    renderBook(portfolio, orders.items);
    renderTeam(team.items);
  } catch (e) {
    if (e instanceof Unauthorized) askForToken(e.message);
  }
}

// ---- the live stream ----
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/stream`, ["ia-agents.bearer", state.token]);
  state.socket = socket;
  socket.onopen = () => { $("#connection").textContent = "live"; $("#connection").className = "pill on"; };
  socket.onclose = () => {
    $("#connection").textContent = "reconnecting"; $("#connection").className = "pill off";
    if (state.socket === socket && state.token) setTimeout(connect, 2000);
  };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "decision") addDecision(event.decision);
    else if (event.type === "escalation") escalationOpened(event.escalation);
    else if (event.type === "resolution") escalationClosed(event.id, event.outcome, event.by);
  };
}

async function start() {
  try {
    const info = await api("/api/v1/info");
    $("#strategy").textContent = `${info.strategy} · v${info.version}`;
    const [decisions, escalations] = await Promise.all([api("/api/v1/decisions?limit=100"), api("/api/v1/escalations")]);
    decisions.items.forEach((d) => addDecision(d, false));
    escalations.items.forEach(escalationOpened);
    renderPending([...pending.values()]);
  } catch (e) {
    if (e instanceof Unauthorized) return askForToken(e.message);
    $("#connection").textContent = "error: " + e.message;
    return;
  }
  connect();
  refresh();
  clearInterval(state.refresh);
  state.refresh = setInterval(refresh, 5000);
}

// ---- the API page ----
async function renderApiDoc() {
  const doc = await (await fetch("/api/v1/openapi.json")).json();
  const main = $("#api-doc");
  main.replaceChildren(el("p", {}, `${doc.info.title}, version ${doc.info.version} (OpenAPI ${doc.openapi}).`));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const params = (op.parameters || []).map((p) => el("li", {}, el("code", {}, p.name), ` (${p.in}) `, p.description || "", p.schema ? el("span", { class: "muted" }, " " + JSON.stringify(p.schema)) : ""));
      const responses = Object.entries(op.responses || {}).map(([code, r]) => el("li", {}, el("code", {}, code), " ", r.description || ""));
      main.append(el("div", { class: "endpoint" },
        el("div", {}, el("code", { class: "method" }, method.toUpperCase()), el("code", {}, path), op.security ? el("span", { class: "muted" }, " — bearer token") : ""),
        el("div", {}, op.summary || ""), params.length ? el("ul", {}, params) : null, el("ul", {}, responses)));
    }
  }
  if (doc.components && doc.components.schemas) main.append(el("h2", {}, "Schemas"), el("pre", {}, JSON.stringify(doc.components.schemas, null, 2)));
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "api") { renderApiDoc(); return; }
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("#token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $("#login").close();
    start();
  });
  $("#forget").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); state.token = null; askForToken(); });
  $("#filter-action").addEventListener("change", applyFilters);
  $("#filter-outcome").addEventListener("change", applyFilters);
  window.addEventListener("hashchange", focusLinked);
  if (state.token) start(); else askForToken();
});
