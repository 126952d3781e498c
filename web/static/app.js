// The dashboard: a leaderboard and a page per title, read from the
// deployment's own HTTP API. State lives in the URL, so every view is a
// link that can be shared: /?sort=approval&aspect=story&q=tt01, and
// /?title=tt0111161&bucket=day&aspect=story&at=2026-11-20T18:07:00Z (a
// title's trend by day on story, and its tallies as of that minute).
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
    const to = new URLSearchParams({ title: t.titleId });
    if (p.get("aspect")) to.set("aspect", p.get("aspect"));
    const link = el("a", { href: "/?" + to.toString(), textContent: t.titleId });
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

// loadTitle reads the title's current tallies, its trend and its tallies
// as of the slider's minute; one failing does not keep the others off the
// page.
async function loadTitle(id) {
  const got = await Promise.allSettled([
    getJSON(`/titles/${encodeURIComponent(id)}/tallies`),
    loadTrend(id),
    loadAsOf(id),
  ]);
  if (params().get("title") !== id) return;
  if (got[0].status === "fulfilled") drawTallies($("tallies"), got[0].value.aspects || {});
  const failed = got.filter((r) => r.status === "rejected").map((r) => r.reason.message);
  status(failed.length ? "cannot refresh: " + failed.join("; ") : `refreshed ${new Date().toLocaleTimeString()}`);
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

// ---- a title's trend, and its tallies "as of" a past minute

const BUCKET_S = { minute: 60, hour: 3600, day: 86400 };
const MINUTE_MS = 60000;
let chart = null; // the uPlot instance drawing the trend

function trendOf(p) {
  return { title: p.get("title"), bucket: p.get("bucket") || "hour", aspect: p.get("aspect") || "overall" };
}

async function loadTrend(id) {
  const want = trendOf(params());
  const q = new URLSearchParams({ aspect: want.aspect, bucket: want.bucket });
  const body = await getJSON(`/titles/${encodeURIComponent(id)}/trend?${q}`);
  const now = trendOf(params());
  if (now.title !== id || now.bucket !== want.bucket || now.aspect !== want.aspect) return; // changed meanwhile
  drawTrend(body);
  setSlider(body);
}

// choicesOf lists the trend's choices, up and down first, as the bars do.
function choicesOf(points) {
  const seen = new Set();
  for (const pt of points) for (const c of Object.keys(pt.tally || {})) seen.add(c);
  const known = ["up", "down"].filter((c) => seen.has(c));
  return known.concat([...seen].filter((c) => !known.includes(c)).sort());
}

function colorOf(choice, i) {
  const css = getComputedStyle(document.documentElement);
  if (choice === "up" || choice === "down") return css.getPropertyValue("--" + choice).trim();
  return ["#2f6fde", "#b8860b", "#8e44ad", "#16a085"][i % 4];
}

// niceTop is the top of a scale from 0 holding max, at least 1.
function niceTop(max, room) { return uPlot.rangeNum(0, Math.max(1, max) * room, 0.05, true)[1]; }

// drawTrend draws the trend's points: the tally of each choice at the end
// of each bucket as lines (left axis), and the votes cast in each bucket
// as bars across it (right axis). The chart's data is the points'
// numbers, with x the end of each bucket (t plus the bucket, in seconds),
// the moment its tally is for; so the slider's mark on a bucket's end
// meets the lines at the tallies "as of" then.
let drawn = null; // the trend the chart shows

function drawTrend(body) {
  const points = body.points || [];
  const choices = choicesOf(points);
  const width = BUCKET_S[body.bucket] || 3600;
  const data = [points.map((pt) => Date.parse(pt.t) / 1000 + width)];
  for (const c of choices) data.push(points.map((pt) => (pt.tally || {})[c] || 0));
  for (const c of choices) data.push(points.map((pt) => (pt.cast || {})[c] || 0));
  const box = $("chart");
  box.dataset.bucket = body.bucket;
  box.dataset.aspect = body.aspect;
  box.dataset.from = body.from;
  box.dataset.to = body.to;
  drawn = body;
  const key = body.bucket + "|" + choices.join("|");
  if (chart && chart.votesKey === key) {
    chart.setData(data);
  } else {
    if (chart) chart.destroy();
    chart = new uPlot(chartOptions(choices, body.bucket), data, box);
    chart.votesKey = key;
    window.trendChart = chart; // the chart and the data it draws, for whoever inspects the page
  }
  const last = points.length ? points[points.length - 1].tally || {} : {};
  const cast = {};
  for (const pt of points) for (const c of choices) cast[c] = (cast[c] || 0) + ((pt.cast || {})[c] || 0);
  const total = Object.values(cast).reduce((a, b) => a + b, 0);
  $("trend-summary").textContent = `${body.aspect}, by ${body.bucket}, ${when(body.from)} to ${when(body.to)}: ` +
    `${total} votes cast (${choices.map((c) => `${cast[c]} ${c}`).join(", ")}); ` +
    `tally at the end: ${choices.map((c) => `${last[c] || 0} ${c}`).join(", ") || "none"}.`;
}

// Counts are whole: their axes tick on whole numbers only.
const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8];

function chartOptions(choices, bucket) {
  const fg = getComputedStyle(document.body).color;
  const grid = { stroke: "#8884", width: 1 };
  const width = BUCKET_S[bucket] || 3600;
  const n = Math.max(1, choices.length);
  const series = [{ label: "end of bucket (UTC)" }];
  choices.forEach((c, i) => series.push({ label: "tally " + c, scale: "tally", stroke: colorOf(c, i), width: 2 }));
  choices.forEach((c, i) => series.push({
    label: "cast " + c, scale: "cast", stroke: colorOf(c, i), fill: colorOf(c, i) + "88", width: 1,
    points: { show: false },
    // Side by side across the bucket that ends at x: [x - width, x).
    paths: uPlot.paths.bars({ disp: {
      x0: { unit: 1, values: (u) => u.data[0].map((x) => x - width + width * (0.1 + 0.8 * i / n)) },
      size: { unit: 1, values: () => [width * 0.8 / n] },
    } }),
  }));
  return {
    width: chartWidth(), height: chartHeight(), series,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    scales: {
      x: { time: true, range: (u, lo, hi) => drawn ? [Date.parse(drawn.from) / 1000, Date.parse(drawn.to) / 1000] : [lo, hi] },
      tally: { range: (u, lo, hi) => [0, niceTop(hi, 1.05)] },
      // Bars take the lower part of the chart, under the lines.
      cast: { range: (u, lo, hi) => [0, niceTop(hi, 2.5)] },
    },
    axes: [
      { stroke: fg, grid, ticks: grid },
      { scale: "tally", label: "tally", stroke: fg, grid, ticks: grid, incrs: COUNT_STEPS },
      { scale: "cast", label: "cast per " + bucket, side: 1, stroke: fg, grid: { show: false }, ticks: grid, incrs: COUNT_STEPS },
    ],
    hooks: { draw: [drawAsOfMark] },
  };
}

function chartWidth() { return Math.max(240, $("chart").clientWidth || 600); }
function chartHeight() { return matchMedia("(max-width: 40rem)").matches ? 220 : 280; }

// drawAsOfMark draws a line at the slider's moment.
function drawAsOfMark(u) {
  const at = params().get("at");
  if (!at) return;
  const x = u.valToPos(Date.parse(at) / 1000, "x", true);
  if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim();
  ctx.lineWidth = 2 * devicePixelRatio;
  ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
  ctx.beginPath();
  ctx.moveTo(x, u.bbox.top);
  ctx.lineTo(x, u.bbox.top + u.bbox.height);
  ctx.stroke();
  ctx.restore();
}

// The slider runs over the trend's span in minutes (the API answers "as
// of" a minute), up to now; at its end it stands for now and the link
// has no at.
function setSlider(body) {
  const s = $("asof");
  const lo = Math.floor(Date.parse(body.from) / MINUTE_MS);
  const hi = Math.max(lo, Math.floor(Math.min(Date.parse(body.to), Date.now()) / MINUTE_MS));
  s.min = String(lo);
  s.max = String(hi);
  const at = params().get("at");
  s.value = String(at ? Math.floor(Date.parse(at) / MINUTE_MS) : hi);
  labelSlider();
}

function sliderTime() {
  const s = $("asof");
  return Number(s.value) >= Number(s.max) ? null : new Date(Number(s.value) * MINUTE_MS);
}

function labelSlider() {
  const t = sliderTime();
  const text = t ? when(t.toISOString()).replace(":00 UTC", " UTC") : "now";
  $("asof-time").textContent = text;
  $("asof").setAttribute("aria-valuetext", text);
}

let asOfSeq = 0;
let asOfTimer = 0;

// loadAsOf shows the title's tallies as of the link's at: the API rounds
// it down to the minute and says which minute it answered.
async function loadAsOf(id) {
  const at = params().get("at");
  const seq = ++asOfSeq;
  const box = $("asof-tallies");
  if (!at) {
    delete box.dataset.at;
    box.replaceChildren();
    $("asof-answer").textContent = "Move the slider to see the tallies as they stood at an earlier minute.";
    return;
  }
  const body = await getJSON(`/titles/${encodeURIComponent(id)}/tallies?at=${encodeURIComponent(at)}`);
  if (seq !== asOfSeq || params().get("title") !== id) return; // a later move answers instead
  drawTallies(box, body.aspects || {});
  box.dataset.at = body.at;
  $("asof-answer").textContent = `Tallies as of ${when(body.at)}: the votes received before that minute.`;
}

function moveSlider(now) {
  const t = sliderTime();
  const p = params();
  if (t) p.set("at", t.toISOString().replace(".000Z", "Z")); else p.delete("at");
  history.replaceState(null, "", "/?" + p.toString());
  labelSlider();
  if (chart) chart.redraw(false);
  clearTimeout(asOfTimer);
  const load = () => loadAsOf(p.get("title")).catch((e) => status("cannot read the tallies as of then: " + e.message));
  if (now) load(); else asOfTimer = setTimeout(load, 200);
}

// clearTrend takes another title's trend and tallies off the page.
let shownTitle = null;
function clearTrend() {
  if (chart) chart.destroy();
  chart = window.trendChart = null;
  drawn = null;
  $("trend-summary").textContent = "";
  $("tallies").replaceChildren();
  $("asof-tallies").replaceChildren();
  delete $("asof-tallies").dataset.at;
  $("asof-answer").textContent = "";
}

// resizeChart fits the chart to a new width of the page (a phone turned,
// a window resized); the chart's own height does not call for it.
function resizeChart() {
  if (chart && (chart.width !== chartWidth() || chart.height !== chartHeight())) {
    chart.setSize({ width: chartWidth(), height: chartHeight() });
  }
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
  if (id !== shownTitle) clearTrend();
  shownTitle = id;
  if (id) {
    $("title-name").textContent = id;
    $("bucket").value = p.get("bucket") || "hour";
    $("trend-aspect").value = p.get("aspect") || "overall";
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
  $("trend-aspect").append(...aspects.map((a) => el("option", { value: a, textContent: a })));
  $("bucket").addEventListener("change", (e) => setParam("bucket", e.target.value === "hour" ? "" : e.target.value));
  $("trend-aspect").addEventListener("change", (e) => setParam("aspect", e.target.value === "overall" ? "" : e.target.value));
  $("trend-controls").addEventListener("submit", (e) => e.preventDefault());
  $("asof").addEventListener("input", () => moveSlider(false));
  $("asof").addEventListener("change", () => moveSlider(true));
  // Resized in the next frame: resizing within the observer would change
  // what it observes before it is done.
  new ResizeObserver(() => requestAnimationFrame(resizeChart)).observe($("chart"));
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
