// Lumio dashboard: the History view (sessions as broadcasts, their viewer curves, stats).
// A module of its own: it wakes when the dashboard shows an account and reads the REST API.
// The chart is uPlot (vendored from npm, loaded as a classic script: window.uPlot).

const $ = (id) => document.getElementById(id);
const PLATFORM_COLOURS = { twitch: "#7c3aed", youtube: "#dc2626", kick: "#15803d", trovo: "#0e7490" };
const PAGE_SIZE = 10;

const state = { account: null, cursor: null, chart: null, loading: false };

async function get(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) {
    const error = new Error(`${path}: ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function duration(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min`;
}

function number(value, digits = 0) {
  return value === null || value === undefined ? "—" : Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
}

function when(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

// --- stats strip -------------------------------------------------------------------------------

async function loadStats() {
  const strip = $("history-stats");
  strip.replaceChildren();
  const now = new Date();
  for (const days of [7, 30]) {
    const from = new Date(now.getTime() - days * 86400000).toISOString();
    const stats = await get(`/v1/streams/stats?from=${encodeURIComponent(from)}&to=${encodeURIComponent(now.toISOString())}`);
    const group = el("div", null, "stats-group");
    group.dataset.days = String(days);
    group.append(el("h3", `Last ${days} days`));
    const list = el("dl");
    for (const [label, value] of [
      ["Streams", number(stats.streams)],
      ["Hours live", number(stats.hoursLive, 1)],
      ["Average viewers", number(stats.averageViewers)],
      ["Peak viewers", number(stats.peakViewers)],
    ]) {
      const item = el("div");
      item.append(el("dt", label), el("dd", value));
      list.append(item);
    }
    group.append(list);
    strip.append(group);
  }
}

// --- the list ----------------------------------------------------------------------------------

function broadcastRow(broadcast) {
  const row = el("tr");
  row.dataset.broadcast = broadcast.id;
  const dateCell = el("td");
  const open = el("button", when(broadcast.startedAt), "link-button");
  open.type = "button";
  open.setAttribute("aria-label", `Open the stream of ${when(broadcast.startedAt)}`);
  open.addEventListener("click", () => openBroadcast(broadcast));
  dateCell.append(open);
  if (broadcast.sessions.some((s) => s.generated)) dateCell.append(el("span", "generated demo data", "badge"));
  if (broadcast.endedAt === null) dateCell.append(el("span", "live now", "badge live"));
  row.append(
    dateCell,
    el("td", broadcast.platforms.join(", ")),
    el("td", duration(broadcast.durationSeconds)),
    el("td", number(broadcast.peakViewers)),
    el("td", number(broadcast.averageViewers)),
    el("td", broadcast.titles.join(" · ") || "—"),
  );
  return row;
}

async function loadPage(more) {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (more && state.cursor) query.set("cursor", state.cursor);
  const page = await get(`/v1/broadcasts?${query}`);
  const body = $("history-rows");
  if (!more) body.replaceChildren();
  body.append(...page.items.map(broadcastRow));
  state.cursor = page.nextCursor;
  $("history-more").hidden = !page.nextCursor;
  $("history-empty").hidden = body.children.length > 0;
}

async function load() {
  if (state.loading) return;
  state.loading = true;
  closeBroadcast(false);
  $("history-error").textContent = "";
  try {
    await loadStats();
    await loadPage(false);
    $("history-content").hidden = false;
    $("history-no-access").hidden = true;
  } catch (error) {
    $("history-content").hidden = true;
    if (error.status === 403) $("history-no-access").hidden = false;
    else if (error.status !== 401) $("history-error").textContent = "The stream history could not be loaded. Try again shortly.";
  } finally {
    state.loading = false;
  }
}

// --- one broadcast -------------------------------------------------------------------------------

function segmentItems(details) {
  const items = [];
  for (const detail of details) {
    for (const segment of detail.segments) {
      const item = el("li");
      const time = el("time", clock(segment.startedAt));
      time.dateTime = segment.startedAt;
      item.append(time, ` ${detail.session.platform}: ${segment.title || "(no title)"} — ${segment.category || "no category"}`);
      items.push([segment.startedAt, item]);
    }
  }
  return items.sort((a, b) => a[0].localeCompare(b[0])).map(([, item]) => item);
}

function trackItems(details) {
  const seen = new Map();
  for (const detail of details) for (const track of detail.tracks) seen.set(track.startedAt + track.title, track);
  return [...seen.values()]
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt))
    .map((track) => {
      const item = el("li");
      const time = el("time", clock(track.startedAt));
      time.dateTime = track.startedAt;
      item.append(time, ` ${track.title} — ${track.artists.join(", ")}`);
      return item;
    });
}

function drawChart(details) {
  const box = $("broadcast-chart");
  if (state.chart) state.chart.destroy();
  state.chart = null;
  box.replaceChildren();
  const tables = details.map((d) => [d.viewers.t, d.viewers.viewers]);
  if (!window.uPlot || tables.every(([t]) => t.length === 0)) {
    box.append(el("p", "No viewer counts were recorded for this stream.", "notice"));
    return;
  }
  const data = window.uPlot.join(tables);
  const marks = details.flatMap((d) => d.segments.slice(1).map((s) => Date.parse(s.startedAt) / 1000));
  const series = [{}].concat(details.map((d) => ({
    label: d.session.platform,
    stroke: PLATFORM_COLOURS[d.session.platform] || "#334155",
    width: 2,
    spanGaps: false,
  })));
  const options = {
    width: Math.max(280, box.clientWidth || 600),
    height: 260,
    series,
    axes: [{}, { label: "viewers" }],
    // The legend is ours (the figure's caption): uPlot's is a table inside the role="img".
    legend: { show: false },
    hooks: { draw: [(u) => markSegments(u, marks)] },
  };
  state.chart = new window.uPlot(options, data, box);
}

function markSegments(u, marks) {
  // Title or category changes: dashed vertical lines across the plot.
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = "#6b7280";
  ctx.setLineDash([4, 4]);
  for (const at of marks) {
    const x = Math.round(u.valToPos(at, "x", true));
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
  }
  ctx.restore();
}

function legend(details) {
  return details.map((d) => {
    const key = el("span", d.session.platform, "legend-key");
    key.prepend(el("span", null, `swatch ${d.session.platform}`));
    return key;
  });
}

function describe(broadcast, details) {
  const platforms = details.map((d) => `${d.session.platform} peak ${number(d.session.peakViewers)}, average ${number(d.session.averageViewers)}`);
  return `Viewers over time on ${broadcast.platforms.join(" and ")}: ${platforms.join("; ")}. Combined peak ${number(broadcast.peakViewers)}.`;
}

async function openBroadcast(broadcast) {
  const panel = $("broadcast");
  $("history-error").textContent = "";
  try {
    const resolution = broadcast.durationSeconds > 3 * 3600 ? "1m" : "raw";
    const details = await Promise.all(broadcast.sessions.map((s) => get(`/v1/streams/${s.id}?resolution=${resolution}`)));
    $("broadcast-title").textContent = `Stream of ${when(broadcast.startedAt)} — ${duration(broadcast.durationSeconds)}`;
    $("broadcast-summary").replaceChildren(...legend(details), el("span", describe(broadcast, details)));
    panel.hidden = false;
    $("history-list-wrap").hidden = true;
    $("broadcast-chart").setAttribute("aria-label", describe(broadcast, details));
    drawChart(details);
    $("broadcast-segments").replaceChildren(...segmentItems(details));
    const tracks = trackItems(details);
    $("broadcast-tracks").replaceChildren(...tracks);
    $("broadcast-no-tracks").hidden = tracks.length > 0;
    $("broadcast-title").focus();
  } catch {
    $("history-error").textContent = "This stream could not be loaded.";
  }
}

function closeBroadcast(focus) {
  $("broadcast").hidden = true;
  $("history-list-wrap").hidden = false;
  if (state.chart) state.chart.destroy();
  state.chart = null;
  if (focus) $("history-title").focus();
}

// --- wiring ----------------------------------------------------------------------------------------

function maybeLoad() {
  const visible = !$("dashboard").hidden;
  const account = $("account-name").textContent;
  $("history").hidden = !visible;
  if (visible && account && account !== state.account) {
    state.account = account;
    load();
  }
  if (!visible) state.account = null;
}

function start() {
  if (!$("history")) return;
  $("history-more").addEventListener("click", () => loadPage(true).catch(() => {
    $("history-error").textContent = "Older streams could not be loaded.";
  }));
  $("history-refresh").addEventListener("click", () => { state.account = null; maybeLoad(); });
  $("broadcast-close").addEventListener("click", () => closeBroadcast(true));
  const observer = new MutationObserver(maybeLoad);
  observer.observe($("dashboard"), { attributes: true, attributeFilter: ["hidden"] });
  observer.observe($("account-name"), { childList: true, characterData: true, subtree: true });
  maybeLoad();
}

start();
