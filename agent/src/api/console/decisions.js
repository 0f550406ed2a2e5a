// The decision view of ia-agents, shared by the console (served as /decisions.js) and the
// backtest's report.html and evaluate.html (inlined): a table of decisions, filtered by action and
// outcome, each opening its debate (every round, every opinion with its reasoning and evidence, the
// tally and why the cycle ended). Plain DOM; every text from the record is set as text, never HTML.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const time = (ms) => new Date(ms).toISOString().replace("T", " ").slice(0, 16);
const num = (x, digits = 2) => (x === null || x === undefined || x === "" ? "" : Number(x).toFixed(digits));
const pct = (x) => (x === null || x === undefined ? "" : (100 * Number(x)).toFixed(0) + "%");
const action = (a) => el("span", { class: String(a) }, a);

// consensus, vetoed, escalated, rejected or split (no consensus)
function outcomeOf(d) {
  if (d.rejected) return "rejected";
  if (d.vetoed) return "vetoed";
  if (d.escalated) return "escalated";
  if (d.consensusReached) return "consensus";
  return "split";
}

// `human`: how a person answered the escalation (approved, rejected, timedOut), when known;
// `d.resolvedBy`: who answered, as the decision records it
function whyItEnded(d, human) {
  const rounds = Array.isArray(d.rounds) ? d.rounds.length : d.rounds;
  const who = d.resolvedBy ? ` (${d.resolvedBy})` : "";
  if (d.resolvedBy && !human) human = d.rejected ? "rejected" : "approved";
  switch (outcomeOf(d)) {
    case "rejected": return `Rejected${human ? ` by a human${who}` : " by the policy"}: no order follows.`;
    case "vetoed": return `Vetoed by a veto role: ${d.action} whatever the tally.`;
    case "escalated": return `The team could not agree in ${rounds} round(s) and asked a human` + (human ? `, who ${human === "timedOut" ? "did not answer in time (the policy's default action)" : human + who}` : "") + `: ${d.action}.`;
    case "consensus": return `Consensus in round ${rounds}: ${d.action} with ${pct(d.confidence)} of the weighted vote.`;
    default: return `No consensus after ${rounds} round(s): ${d.action}.`;
  }
}

function roundView(tally, opinions) {
  const votes = new Map((tally.votes || []).map((v) => [v.assistant, v]));
  const scores = Object.entries(tally.scores || {}).map(([a, s]) => `${a} ${num(s)}`).join(" · ");
  const rows = opinions.map((o) => {
    const weight = o.weight !== undefined ? o.weight : (votes.get(o.assistant) || {}).weight;
    const evidence = Object.entries(o.evidence || {}).map(([k, v]) => `${k}: ${num(v, 4)}`).join(", ");
    return el("tr", { class: "opinion", "data-assistant": o.assistant },
      el("td", {}, o.assistant), el("td", {}, o.role),
      el("td", {}, Number(o.confidence) === 0 && !o.veto ? el("span", { class: "muted" }, "abstains") : action(o.action), o.veto ? " (veto)" : ""),
      el("td", {}, num(o.confidence)), el("td", {}, num(weight)),
      el("td", {}, el("div", { class: "reasoning" }, o.reasoning), el("div", { class: "evidence" }, evidence)));
  });
  return el("div", { class: "round" },
    el("div", {}, el("strong", {}, `Round ${tally.round}`), ` — tally ${scores || "none"}; answered weight ${num(tally.answeredWeight)} of ${num(tally.totalWeight)}`),
    el("table", {}, el("thead", {}, el("tr", {}, ["assistant", "role", "opinion", "confidence", "weight", "reasoning and evidence"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)));
}

function debateView(d, human) {
  const transcript = d.transcript || [];
  const tallies = Array.isArray(d.rounds) ? d.rounds : [];
  const rounds = tallies.length ? tallies : [...new Set(transcript.map((o) => o.round))].map((round) => ({ round }));
  return el("div", {}, el("div", { class: "why" }, whyItEnded(d, human)),
    rounds.map((t) => roundView(t, transcript.filter((o) => o.round === t.round))));
}

const DECISION_COLUMNS = ["time (UTC)", "symbol", "action", "confidence", "outcome", "rounds", "price"];

// one row; `execution` (what the desk did) is a last column when the record has it
function decisionRow(d, onOpen) {
  const outcome = outcomeOf(d);
  const rounds = Array.isArray(d.rounds) ? d.rounds.length : d.rounds;
  return el("tr", { class: "decision", "data-id": d.id, "data-action": d.action, "data-outcome": outcome, onclick: (e) => onOpen(e.currentTarget) },
    el("td", {}, time(d.decidedAt)), el("td", {}, d.symbol), el("td", {}, action(d.action)), el("td", {}, pct(d.confidence)),
    el("td", { class: "outcome" }, outcome === "split" ? "no consensus" : outcome), el("td", {}, rounds), el("td", {}, num(d.price)),
    d.execution === undefined ? null : el("td", { class: "execution" }, d.execution));
}

// opens (or closes) a row's debate; `load(id)` resolves to the decision with its transcript
async function toggleDebate(row, load, human) {
  const open = row.nextElementSibling;
  if (open && open.classList.contains("debate")) { open.remove(); return; }
  const cell = el("td", { colspan: String(row.children.length) }, "loading the debate…");
  row.after(el("tr", { class: "debate", "data-id": row.dataset.id }, cell));
  try {
    const d = await load(row.dataset.id);
    cell.replaceChildren(debateView(d, human ? human(d.id) : undefined));
  } catch (e) {
    cell.textContent = "The debate is not available: " + e.message;
    if (e.name === "Unauthorized") throw e;
  }
}

function filterControls() {
  const options = (values) => values.map(([v, label]) => el("option", { value: v }, label));
  return el("div", { class: "filters" },
    el("label", {}, "action ", el("select", { class: "filter-action" }, options([["", "any"], ["BUY", "BUY"], ["SELL", "SELL"], ["HOLD", "HOLD"]]))),
    el("label", {}, "outcome ", el("select", { class: "filter-outcome" }, options([["", "any"], ["consensus", "consensus"], ["vetoed", "vetoed"], ["escalated", "escalated"], ["rejected", "rejected"], ["split", "no consensus"]]))));
}

// shows only the rows of `table` with the action and outcome asked (empty: any), debates included
function applyDecisionFilters(table, wantedAction, wantedOutcome) {
  for (const row of table.querySelectorAll("tr.decision")) {
    const shown = (!wantedAction || row.dataset.action === wantedAction) && (!wantedOutcome || row.dataset.outcome === wantedOutcome);
    row.hidden = !shown;
    const next = row.nextElementSibling;
    if (next && next.classList.contains("debate")) next.hidden = !shown;
  }
}

// A static view (a report): filters and a table of `decisions` (each with its transcript).
function staticDecisionView(decisions) {
  const byId = new Map(decisions.map((d) => [d.id, d]));
  const withExecution = decisions.some((d) => d.execution !== undefined);
  const head = DECISION_COLUMNS.concat(withExecution ? ["execution"] : []).map((h) => el("th", {}, h));
  const table = el("table", { class: "decisions" }, el("thead", {}, el("tr", {}, head)),
    el("tbody", {}, decisions.map((d) => decisionRow(d, (row) => toggleDebate(row, async (id) => byId.get(id))))));
  const controls = filterControls();
  const refilter = () => applyDecisionFilters(table, controls.querySelector(".filter-action").value, controls.querySelector(".filter-outcome").value);
  controls.addEventListener("change", refilter);
  return el("div", { class: "decision-view" }, controls, table);
}

// A report embeds its decisions as JSON in <script type="application/json" class="ia-decisions">,
// each followed by its view.
document.addEventListener("DOMContentLoaded", () => {
  for (const data of document.querySelectorAll("script.ia-decisions")) {
    data.after(staticDecisionView(JSON.parse(data.textContent)));
  }
});
