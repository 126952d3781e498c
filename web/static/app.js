// The dashboard: a leaderboard and a page per title, read from the
// deployment's own HTTP API. State lives in the URL, so every view is a
// link that can be shared: /?sort=approval&aspect=story&q=tt01, and
// /?title=tt0111161.
"use strict";

const REFRESH_MS = 5000;
const PAGE = 50;
const aspects = (document.body.dataset.aspects || "overall").split(" ").filter(Boolean);
const $ = (id) => document.getElementById(id);

function params() { return new URLSearchParams(location.search); }

function go(p, replace) {
  const url = p.toString() ? "/?" + p.toString() : "/";
  if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
  render();
}

async function getJSON(path) {
  const resp = await fetch(path, { headers: { accept: "application/json" } });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const e = body.error || {};
    throw new Error(`${resp.status} ${e.code || ""}: ${e.message || resp.statusText}`);
  }
  return body;
}

function status(text) { $("status").textContent = text; }

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c);
  return e;
}

// ---- leaderboard

let board = { key: "", rows: [], next: null };

function boardKey(p) { return `${p.get("sort") || "votes"}|${p.get("aspect") || ""}`; }

async function loadBoard(reset) {
  const p = params();
  const key = boardKey(p);
  if (reset || key !== board.key) board = { key, rows: [], next: null };
  const q = new URLSearchParams({ sort: p.get("sort") || "votes", limit: String(Math.max(PAGE, board.rows.length || PAGE)) });
  if (p.get("aspect")) q.set("aspect", p.get("aspect"));
  const body = await getJSON("/titles?" + q.toString());
  if (boardKey(params()) !== key) return; // the choice changed meanwhile
  board.rows = body.titles;
  board.next = body.next;
  board.aspect = body.aspect || "overall";
  board.rankedAt = body.rankedAt;
  drawBoard();
}

async function moreBoard() {
  const p = params();
  const q = new URLSearchParams({ sort: p.get("sort") || "votes", limit: String(PAGE), cursor: board.next });
  if (p.get("aspect")) q.set("aspect", p.get("aspect"));
  const body = await getJSON("/titles?" + q.toString());
  board.rows = board.rows.concat(body.titles);
  board.next = body.next;
  drawBoard();
}

function drawBoard() {
  const p = params();
  const term = (p.get("q") || "").toLowerCase();
  const shown = board.aspect || "overall";
  $("col-up").textContent = `${shown} up`;
  $("col-down").textContent = `${shown} down`;
  const body = $("leaderboard").tBodies[0];
  const rows = [];
  board.rows.forEach((t, i) => {
    if (term && !t.titleId.toLowerCase().includes(term)) return;
    const link = el("a", { href: "/?title=" + encodeURIComponent(t.titleId), textContent: t.titleId });
    link.dataset.title = t.titleId;
    const a = (t.aspects || {})[shown] || {};
    const tr = el("tr", {},
      el("td", { className: "num", textContent: String(i + 1) }),
      el("td", {}, link),
      el("td", { className: "num", textContent: String(t.votes) }),
      el("td", { className: "num", textContent: String(a.up || 0) }),
      el("td", { className: "num", textContent: String(a.down || 0) }),
      el("td", { className: "num", textContent: (100 * t.approval).toFixed(1) + "%" }),
      el("td", { className: "hide-narrow", textContent: when(t.lastVoteAt) }));
    tr.dataset.title = t.titleId;
    rows.push(tr);
  });
  body.replaceChildren(...rows);
  $("more").hidden = !board.next;
  const ranked = board.rankedAt ? ` · ranked ${when(board.rankedAt)} (every minute)` : " · not ranked yet";
  status(`${rows.length} titles shown${ranked} · refreshed ${new Date().toLocaleTimeString()}`);
}

// ---- a title's page

async function loadTitle(id) {
  const t = await getJSON(`/titles/${encodeURIComponent(id)}/tallies`);
  if (params().get("title") !== id) return;
  drawTallies($("tallies"), t.aspects || {});
  status(`refreshed ${new Date().toLocaleTimeString()}`);
}

function drawTallies(box, counts) {
  const parts = [];
  const names = aspects.filter((a) => counts[a]).concat(Object.keys(counts).filter((a) => !aspects.includes(a)));
  for (const name of names) {
    const c = counts[name];
    const up = c.up || 0, down = c.down || 0, n = up + down;
    const bar = el("div", { className: "bar" });
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", `${name}: ${up} up, ${down} down`);
    const u = el("span", { className: "up" }), d = el("span", { className: "down" });
    u.style.width = n ? (100 * up / n) + "%" : "0";
    d.style.width = n ? (100 * down / n) + "%" : "0";
    bar.append(u, d);
    const box1 = el("div", { className: "aspect" }, el("h3", { textContent: name }), bar,
      el("div", { className: "legend", textContent: `${up} up · ${down} down` }));
    box1.dataset.aspect = name;
    box1.dataset.up = String(up);
    box1.dataset.down = String(down);
    parts.push(box1);
  }
  if (!parts.length) parts.push(el("p", { textContent: "No votes yet." }));
  box.replaceChildren(...parts);
}

// ---- routing and refresh

let timer = 0;

async function refresh() {
  const p = params();
  try {
    if (p.get("title")) await loadTitle(p.get("title"));
    else await loadBoard(false);
  } catch (e) {
    status("cannot refresh: " + e.message);
  }
}

function render() {
  const p = params();
  const id = p.get("title");
  $("board").hidden = !!id;
  $("title").hidden = !id;
  if (id) {
    $("title-name").textContent = id;
    document.title = id + " · Votes";
  } else {
    $("sort").value = p.get("sort") || "votes";
    $("aspect").value = p.get("aspect") || "";
    $("search").value = p.get("q") || "";
    document.title = "Votes";
  }
  clearInterval(timer);
  refresh();
  timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

function setParam(name, value) {
  const p = params();
  if (value) p.set(name, value); else p.delete(name);
  go(p, true);
}

function init() {
  $("aspect").append(el("option", { value: "", textContent: "All aspects" }),
    ...aspects.map((a) => el("option", { value: a, textContent: a })));
  $("sort").addEventListener("change", (e) => setParam("sort", e.target.value === "votes" ? "" : e.target.value));
  $("aspect").addEventListener("change", (e) => setParam("aspect", e.target.value));
  $("search").addEventListener("input", (e) => {
    const p = params();
    if (e.target.value) p.set("q", e.target.value); else p.delete("q");
    history.replaceState(null, "", p.toString() ? "/?" + p : "/");
    drawBoard();
  });
  $("controls").addEventListener("submit", (e) => {
    // Enter on a title ID opens its page.
    e.preventDefault();
    const v = $("search").value.trim();
    if (v) go(new URLSearchParams({ title: v }));
  });
  $("more").addEventListener("click", () => moreBoard().catch((e) => status("cannot load more: " + e.message)));
  document.addEventListener("click", (e) => {
    const a = e.target.closest("a[href^='/']");
    if (!a || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    go(new URL(a.href).searchParams);
  });
  addEventListener("popstate", render);
  render();
}

init();
