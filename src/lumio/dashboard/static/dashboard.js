// Lumio dashboard: vanilla JS over the REST API (/v1) and the live stream (/v1/events).
// The state on screen is always re-read from the API; a live event is only a hint to re-read.

import {
  $,
  ApiError,
  PLATFORM_NAMES,
  PLATFORMS,
  SignedOut,
  announce,
  api,
  busy,
  can,
  element,
  hooks,
  now,
  state,
  unmount,
} from "{{asset:core.js}}";
import * as channelViews from "{{asset:views/channels.js}}";
import * as members from "{{asset:views/members.js}}";
import * as keys from "{{asset:views/keys.js}}";
import * as account from "{{asset:views/account.js}}";
import * as invitation from "{{asset:views/invitation.js}}";

// The Spotify link and now playing (the Spotify poller's API); where it is not deployed, the
// music card shows the manual connect alone.
const SPOTIFY_CONNECTION = "/v1/spotify/connection";
const SPOTIFY_AUTHORIZE = "/v1/spotify/connection/authorize";
const SPOTIFY_NOW_PLAYING = "/v1/spotify/now-playing";
const RECONNECT_BASE_MS = 1000;
const RECONNECT_CAP_MS = 15000;
// A stream that sent nothing (not even a heartbeat) for this long is dead: reconnect.
const STREAM_SILENCE_MS = 40000;
const PAUSED_POLL_MS = 5000;
// Every consumer reconciles from the truth every minute (DESIGN §5), events or not: an event
// lost between the server and this page must not leave a stale status on screen for long.
const RECONCILE_MS = 60000;

// The views besides the status: each module shows itself and reads what it needs.
const VIEWS = { members, keys, account };
// Views whose markup is in the page (history.js and notifications.js fill them): never emptied.
const STATIC_VIEWS = new Set(["status", "history", "notifications"]);
const VIEW_PERMISSIONS = { members: "members:manage", notifications: "webhooks:manage" };

const live = {
  source: null,
  attempts: 0,
  reconnectTimer: null,
  silenceTimer: null,
  refreshTimer: null,
  pollTimer: null,
};

// ---------------------------------------------------------------------------------------------
// Screens

function showSignIn(notice) {
  stopLive();
  state.me = null;
  state.csrf = null;
  state.permissions = new Set();
  $("loading").hidden = true;
  $("dashboard").hidden = true;
  $("session-bar").hidden = true;
  $("views-nav").hidden = true;
  $("invitation").hidden = true;
  unmount("invitation");
  for (const name of Object.keys(VIEWS)) unmount(`view-${name}`);
  $("signin").hidden = false;
  $("signin-notice").textContent = notice || "";
  $("signin-error").textContent = "";
  $("signin-password").value = "";
  $("signin-email").focus();
}

function showDashboard(me, { focus } = { focus: false }) {
  applyMe(me);
  $("loading").hidden = true;
  $("signin").hidden = true;
  $("invitation").hidden = true;
  unmount("invitation");
  $("session-bar").hidden = false;
  $("views-nav").hidden = false;
  $("dashboard").hidden = false;
  showView(viewFromHash(), focus);
}

// ---------------------------------------------------------------------------------------------
// Views: #/status (default), #/history, #/notifications, #/members, #/keys, #/account

function viewFromHash() {
  const name = window.location.hash.replace(/^#\/?/, "");
  if (name in VIEW_PERMISSIONS && !can(VIEW_PERMISSIONS[name])) return "status";
  return name in VIEWS || STATIC_VIEWS.has(name) ? name : "status";
}

function showView(name, focus) {
  for (const section of document.querySelectorAll("#dashboard > [data-view]")) {
    section.hidden = section.dataset.view !== name;
    if (section.hidden && !STATIC_VIEWS.has(section.dataset.view)) unmount(section.id);
  }
  for (const link of document.querySelectorAll("#views-nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (name in VIEWS) VIEWS[name].show();
  if (focus) (name === "status" ? $("dashboard-title") : $(`${name}-title`)).focus();
}

function onHashChange() {
  if (invitation.tokenFromHash()) {
    invitation.show();
    return;
  }
  // Only "#/…" names a view; "#main" is the skip link's target.
  const hash = window.location.hash;
  if (state.me && (hash === "" || hash.startsWith("#/"))) showView(viewFromHash(), true);
}

function applyMe(me) {
  state.me = me;
  if (me.csrfToken) state.csrf = me.csrfToken;
  state.permissions = new Set(me.permissions || []);
  const select = $("account-select");
  select.replaceChildren(
    ...me.accounts.map((account) => {
      const option = document.createElement("option");
      option.value = account.id;
      option.textContent = `${account.name} (${account.role})`;
      option.selected = account.active;
      return option;
    }),
  );
  const active = me.accounts.find((a) => a.active);
  $("switch-form").hidden = me.accounts.length < 2;
  for (const [name, permission] of Object.entries(VIEW_PERMISSIONS)) {
    $("views-nav").querySelector(`[data-view="${name}"]`).hidden = !can(permission);
  }
  channelViews.applyPermissions();
  $("account-name").textContent = active ? active.name : "No account";
  $("role-name").textContent = active ? active.role : "none";
  document.title = active ? `${active.name} — Lumio` : "Lumio — channel status";
}

// ---------------------------------------------------------------------------------------------
// Reading the state

async function refresh() {
  if (!state.me) return;
  try {
    if (!can("spotify:read")) {
      state.channels = [];
      state.statuses = [];
      state.manual = null;
      renderAll();
      return;
    }
    const [channels, statuses, manual, spotifyLink, nowPlaying] = await Promise.all([
      api("GET", "/v1/channels"),
      api("GET", "/v1/channel-status"),
      readManual(),
      optional(SPOTIFY_CONNECTION),
      optional(SPOTIFY_NOW_PLAYING),
    ]);
    announceChanges(state.statuses, statuses);
    state.channels = channels;
    state.statuses = statuses;
    state.manual = manual;
    state.spotifyLink = spotifyLink;
    state.nowPlaying = nowPlaying;
    $("dashboard-error").textContent = "";
    renderAll();
  } catch (error) {
    if (error instanceof SignedOut) return;
    $("dashboard-error").textContent = `Could not load the status: ${error.message}`;
  }
}

async function readManual() {
  try {
    const manual = await api("GET", "/v1/spotify/manual-connect");
    return withDeadline(manual);
  } catch (error) {
    if (error instanceof ApiError && error.status === 503) return { unavailable: true };
    throw error;
  }
}

function withDeadline(manual) {
  const seconds = manual.remainingSeconds;
  const deadline = manual.active && seconds != null ? Date.now() + seconds * 1000 : null;
  return { ...manual, deadline };
}

// A read whose failure (a route not deployed, Redis down) only hides what it would show.
async function optional(path) {
  try {
    return await api("GET", path);
  } catch (error) {
    if (error instanceof SignedOut) throw error;
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

function renderAll() {
  const allowed = can("spotify:read");
  $("no-access").hidden = allowed;
  $("music").hidden = !allowed;
  renderCards();
  renderSummary();
  renderMusic();
  tick();
}

function platformsShown() {
  const present = new Set([
    ...state.channels.map((c) => c.platform),
    ...state.statuses.map((s) => s.platform),
  ]);
  return PLATFORMS.filter((p) => present.has(p));
}

// A stale channel (its platform has not answered for a while) is confirmed neither live nor
// offline: the summary and the music note leave it out.
function isStale(platform) {
  const channel = state.channels.find((c) => c.platform === platform);
  return Boolean(channel && channel.stale);
}

function livePlatformNames() {
  return platformsShown()
    .filter((platform) => !isStale(platform) && (statusOf(platform) || {}).isOnline)
    .map((platform) => PLATFORM_NAMES[platform]);
}

function statusOf(platform) {
  return state.statuses.find((s) => s.platform === platform) || null;
}

function renderCards() {
  const list = $("cards");
  const shown = platformsShown();
  for (const card of [...list.children]) {
    if (!shown.includes(card.dataset.platform)) card.remove();
  }
  shown.forEach((platform, index) => {
    let card = list.querySelector(`[data-platform="${platform}"]`);
    if (!card) card = createCard(platform);
    if (list.children[index] !== card) list.insertBefore(card, list.children[index] || null);
    fillCard(card, platform);
  });
}

function createCard(platform) {
  const card = element("li", "card");
  card.dataset.platform = platform;
  const titleId = `card-${platform}-title`;
  const article = element("article");
  article.setAttribute("aria-labelledby", titleId);
  const head = element("div", "card-head");
  const title = element("h3", null, PLATFORM_NAMES[platform] || platform);
  title.id = titleId;
  head.append(title, element("span", "badge"));
  const facts = element("dl", "facts");
  for (const [key, label] of [
    ["title", "Title"],
    ["category", "Category"],
    ["viewers", "Viewers"],
    ["uptime", "Uptime"],
  ]) {
    const dd = element("dd");
    dd.dataset.field = key;
    facts.append(element("dt", null, label), dd);
  }
  const updated = element("p", "updated");
  updated.append("Last updated ", element("time"));
  article.append(head, element("p", "channel-name"), facts, updated, element("p", "push"));
  channelViews.extendCard(article, platform);
  card.append(article);
  return card;
}

// Push ingestion (Twitch EventSub, Kick webhooks, YouTube WebSub): what the channel card says.
const PUSH_LABELS = {
  pending: "Push: subscribing",
  enabled: "Push: on",
  failed: "Push: failed, polling only",
  revoked: "Push: revoked, polling only",
};

function fillPush(card, channel) {
  const line = card.querySelector(".push");
  const status = channel ? channel.pushStatus : "none";
  line.dataset.push = status || "none";
  line.hidden = !PUSH_LABELS[status];
  const last = channel && channel.pushLastMessageAt;
  const suffix = last ? ` (last message ${new Date(last).toLocaleTimeString()})` : "";
  line.textContent = PUSH_LABELS[status] ? PUSH_LABELS[status] + suffix : "";
}

function fillCard(card, platform) {
  const status = statusOf(platform);
  const channel = state.channels.find((c) => c.platform === platform);
  const isLive = Boolean(status && status.isOnline);
  card.dataset.live = String(isLive);
  card.dataset.stale = String(Boolean(channel && channel.stale));
  channelViews.fillCard(card, platform, channel);
  const badge = card.querySelector(".badge");
  badge.dataset.live = String(isLive);
  badge.textContent = isLive ? "Live" : "Offline";
  card.querySelector(".channel-name").textContent = channel ? channel.displayName : "";
  const field = (key) => card.querySelector(`[data-field="${key}"]`);
  field("title").textContent = isLive ? status.streamTitle || "—" : "Not live";
  field("category").textContent = isLive ? status.category || "—" : "—";
  field("viewers").textContent =
    isLive && status.viewerCount != null ? status.viewerCount.toLocaleString("en") : "—";
  const uptime = field("uptime");
  if (isLive && status.startedAt) {
    uptime.dataset.since = status.startedAt;
  } else {
    delete uptime.dataset.since;
    uptime.textContent = "—";
  }
  fillPush(card, channel);
  const updated = card.querySelector(".updated time");
  const updatedAt = status ? status.updatedAt : channel && channel.lastPolledAt;
  if (updatedAt) {
    updated.dateTime = updatedAt;
    updated.dataset.at = updatedAt;
    updated.title = new Date(updatedAt).toLocaleString();
  } else {
    delete updated.dataset.at;
    updated.textContent = "never";
  }
}

function renderSummary() {
  const summary = $("summary");
  const liveOn = livePlatformNames();
  const shown = platformsShown();
  summary.dataset.live = String(liveOn.length > 0);
  if (!can("spotify:read")) {
    summary.textContent = "Channel status is not available to your role.";
  } else if (shown.length === 0) {
    summary.textContent = "No channels are linked to this account yet.";
  } else if (liveOn.length > 0) {
    summary.textContent = `Live now on ${liveOn.length} of ${shown.length} platform${shown.length === 1 ? "" : "s"}: ${liveOn.join(", ")}${staleSuffix(shown)}`;
  } else if (shown.some(isStale)) {
    summary.textContent = `Not confirmed live anywhere (${shown.length} linked)${staleSuffix(shown)}`;
  } else {
    summary.textContent = `Not live on any platform (${shown.length} linked)`;
  }
}

function staleSuffix(shown) {
  const stale = shown.filter(isStale).map((platform) => PLATFORM_NAMES[platform]);
  if (!stale.length) return "";
  return ` — ${stale.join(", ")} not answering: status unknown`;
}

function renderMusic() {
  const manual = state.manual;
  const liveOn = livePlatformNames();
  const mayControl = can("spotify:worker");
  const unavailable = Boolean(manual && manual.unavailable);
  const active = Boolean(manual && manual.active);
  $("manual-label").textContent = unavailable ? "unavailable" : active ? "on" : "off";
  $("manual-remaining-wrap").hidden = !active;
  $("manual-controls").hidden = !mayControl || unavailable;
  $("manual-readonly").hidden = mayControl;
  $("manual-start").textContent = active ? "Restart 30 minutes" : "Start manual connect";
  $("manual-stop").hidden = !active;
  $("gate-note").textContent = gateNote(active, liveOn, unavailable);
  renderSpotify();
}

function gateNote(active, liveOn, unavailable) {
  if (unavailable) {
    return "Manual connect cannot be reached right now (Redis is down); channel status still works.";
  }
  // Being live opens the gate, but without a linked Spotify account nothing is read.
  if (state.spotifyLink === null && liveOn.length > 0) {
    const also = active ? " and manual connect is on" : "";
    return `No Spotify account is linked: nothing is read, although you are live on ${liveOn.join(", ")}${also}.`;
  }
  if (liveOn.length > 0 && !active) {
    return `Spotify is connected only because you are live on ${liveOn.join(", ")}: it stops when the stream ends.`;
  }
  if (liveOn.length > 0) {
    return `Spotify is connected by hand and because you are live on ${liveOn.join(", ")}.`;
  }
  if (active) return "Spotify is connected by hand until the countdown ends.";
  return "Spotify is not being read: you are not live and manual connect is off.";
}

function renderSpotify() {
  const link = state.spotifyLink;
  const line = $("spotify-link");
  const connect = $("spotify-connect");
  line.hidden = link === undefined;
  connect.hidden = !(can("spotify:worker") && (link === null || (link && link.needsReauthorization)));
  connect.textContent = link ? "Reconnect Spotify" : "Connect Spotify";
  if (link === null) {
    line.textContent = "Spotify is not linked to this account.";
  } else if (link && link.needsReauthorization) {
    line.textContent = "Spotify must be linked again: its access was revoked or has expired.";
  } else if (link) {
    line.textContent = `Spotify linked: ${link.displayName || link.spotifyUserId}.`;
  }
  const playing = $("now-playing");
  playing.hidden = state.nowPlaying === undefined || !link || link.needsReauthorization;
  if (!playing.hidden) playing.textContent = nowPlayingText(state.nowPlaying);
}

function nowPlayingText(now) {
  if (!now) return "No track information right now.";
  if (now.kind === "ad") return "An ad is playing on Spotify.";
  if (!now.title) return "Nothing is playing on Spotify.";
  const artists = (now.artists || []).join(", ");
  const paused = now.isPlaying ? "" : " (paused)";
  return `Now playing: ${now.title}${artists ? ` — ${artists}` : ""}${paused}`;
}

// ---------------------------------------------------------------------------------------------
// Clocks: uptime, countdown, "last updated"

function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return hours > 0 ? `${hours}:${two(minutes)}:${two(seconds)}` : `${two(minutes)}:${two(seconds)}`;
}

function formatAgo(seconds) {
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

function tick() {
  const at = now();
  for (const node of document.querySelectorAll("[data-since]")) {
    node.textContent = formatDuration((at - Date.parse(node.dataset.since)) / 1000);
  }
  for (const node of document.querySelectorAll("time[data-at]")) {
    node.textContent = formatAgo((at - Date.parse(node.dataset.at)) / 1000);
  }
  const manual = state.manual;
  if (manual && manual.active && manual.deadline) {
    const left = Math.ceil((manual.deadline - Date.now()) / 1000);
    $("manual-remaining").textContent = formatDuration(left);
    if (left <= 0) {
      manual.deadline = null;
      scheduleRefresh(0); // the key has expired: read the state again
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Announcements for screen readers (the cards themselves are not live regions: the clocks tick)

function announceChanges(before, after) {
  if (!before.length && !after.length) return;
  const was = new Map(before.map((s) => [s.platform, s.isOnline]));
  const messages = [];
  for (const status of after) {
    const name = PLATFORM_NAMES[status.platform] || status.platform;
    if (status.isOnline && was.get(status.platform) === false) messages.push(`${name} went live.`);
    if (!status.isOnline && was.get(status.platform) === true) messages.push(`${name} went offline.`);
    if (status.isOnline && !was.has(status.platform) && before.length) messages.push(`${name} went live.`);
  }
  if (messages.length) announce(messages.join(" "));
}

// ---------------------------------------------------------------------------------------------
// Live updates: Server-Sent Events with our own reconnect (backoff) and a re-read after each

function setIndicator(name, text) {
  const indicator = $("live-indicator");
  if (indicator.dataset.state === name) return;
  indicator.dataset.state = name;
  indicator.textContent = `Live updates: ${text}`;
}

function startLive() {
  stopLive();
  if (!state.me || !can("spotify:read")) {
    setIndicator("off", "not available to your role");
    return;
  }
  const source = new EventSource("/v1/events");
  live.source = source;
  const on = (name, handler) =>
    source.addEventListener(name, (event) => {
      if (live.source !== source) return;
      heard();
      handler(event);
    });
  on("hello", (event) => {
    live.attempts = 0;
    if (JSON.parse(event.data).live) setIndicator("connected", "connected");
    scheduleRefresh(0);
  });
  on("resync", () => {
    window.clearInterval(live.pollTimer);
    setIndicator("connected", "connected");
    scheduleRefresh(0);
  });
  on("unavailable", () => {
    setIndicator("paused", "paused, reconnecting to the event bus…");
    pollWhilePaused();
  });
  on("heartbeat", () => {});
  on("status", () => scheduleRefresh(50));
  on("bye", (event) => {
    const reason = JSON.parse(event.data).reason;
    stopLive();
    if (reason === "account_changed" || reason === "forbidden") reloadMe().then(startLive, () => {});
    else reconnectLater();
  });
  source.onerror = () => {
    if (live.source !== source) return;
    stopLive();
    reconnectLater();
  };
  heard();
}

// Without events (the server cannot reach Redis) the state is read every few seconds instead.
function pollWhilePaused() {
  scheduleRefresh(0);
  window.clearInterval(live.pollTimer);
  live.pollTimer = window.setInterval(() => scheduleRefresh(0), PAUSED_POLL_MS);
}

function heard() {
  window.clearTimeout(live.silenceTimer);
  live.silenceTimer = window.setTimeout(() => {
    stopLive();
    reconnectLater();
  }, STREAM_SILENCE_MS);
}

function stopLive() {
  if (live.source) live.source.close();
  live.source = null;
  window.clearInterval(live.pollTimer);
  window.clearTimeout(live.silenceTimer);
  window.clearTimeout(live.reconnectTimer);
}

function reconnectLater() {
  setIndicator("reconnecting", "reconnecting…");
  const ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** live.attempts);
  const delay = ceiling / 2 + Math.random() * (ceiling / 2);
  live.attempts += 1;
  live.reconnectTimer = window.setTimeout(async () => {
    try {
      await reloadMe(); // a 401 here sends the user to sign in
    } catch (error) {
      if (error instanceof SignedOut) return;
      reconnectLater(); // the server is still away
      return;
    }
    startLive();
  }, delay);
}

function scheduleRefresh(delay) {
  window.clearTimeout(live.refreshTimer);
  live.refreshTimer = window.setTimeout(refresh, delay);
}

async function reloadMe() {
  const me = await api("GET", "/v1/me");
  applyMe(me);
  return me;
}

// ---------------------------------------------------------------------------------------------
// Actions

async function onSignIn(event) {
  event.preventDefault();
  const email = $("signin-email").value.trim();
  const password = $("signin-password").value;
  const error = $("signin-error");
  $("signin-email").setAttribute("aria-invalid", String(!email));
  $("signin-password").setAttribute("aria-invalid", String(!password));
  if (!email || !password) {
    error.textContent = "Enter your email and password.";
    $(email ? "signin-password" : "signin-email").focus();
    return;
  }
  await busy($("signin-button"), async () => {
    try {
      const me = await api("POST", "/v1/auth/login", { email, password });
      window.clearInterval(throttleTimer);
      error.textContent = "";
      $("signin-password").value = "";
      enterDashboard(me, true);
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 429) {
        throttled(failure.retryAfter || 60);
        return;
      }
      error.textContent =
        failure instanceof ApiError && failure.status === 401
          ? "Wrong email or password."
          : `Could not sign in: ${failure.message}`;
      $("signin-password").focus();
    }
  });
}

// Sign-in is throttled (429 with Retry-After): say how long to wait, and count it down.
let throttleTimer = null;

function throttled(seconds) {
  const error = $("signin-error");
  const until = Date.now() + seconds * 1000;
  window.clearInterval(throttleTimer);
  const show = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      window.clearInterval(throttleTimer);
      error.textContent = "You can try to sign in again.";
      return;
    }
    error.textContent = `Sign-in paused: too many attempts, try again in ${left} s.`;
  };
  show();
  throttleTimer = window.setInterval(show, 1000);
}

function enterDashboard(me, focus) {
  showDashboard(me, { focus });
  state.statuses = [];
  state.channels = [];
  $("cards").replaceChildren();
  refresh();
  startLive();
}

async function onSwitch(event) {
  event.preventDefault();
  const accountId = $("account-select").value;
  const current = state.me.accounts.find((a) => a.active);
  if (current && current.id === accountId) return;
  await busy($("switch-button"), async () => {
    try {
      const me = await api("PUT", "/v1/me/active-account", { accountId });
      enterDashboard(me, false);
      const active = me.accounts.find((a) => a.active);
      announce(`Switched to ${active ? active.name : "the account"}.`);
    } catch (failure) {
      if (!(failure instanceof SignedOut)) {
        $("dashboard-error").textContent = `Could not switch: ${failure.message}`;
      }
    }
  });
}

async function onLogout() {
  try {
    await api("POST", "/v1/auth/logout");
  } catch (failure) {
    if (failure instanceof SignedOut) return;
  }
  showSignIn("You have signed out.");
}

async function onManual(method, button) {
  await busy(button, async () => {
    try {
      const answer = await api(method, "/v1/spotify/manual-connect");
      if (method === "POST") {
        state.manual = withDeadline(answer);
        announce("Manual connect started for 30 minutes.");
      } else {
        state.manual = { active: false, remainingSeconds: null, deadline: null };
        announce("Manual connect stopped.");
      }
      $("music-error").textContent = "";
      renderMusic();
      tick();
      // Stop hides itself: keep the focus in the music card rather than lose it to the page.
      if (button.hidden) $("manual-start").focus();
    } catch (failure) {
      if (failure instanceof SignedOut) return;
      $("music-error").textContent = failure.message;
    }
  });
}

async function onConnectSpotify(event) {
  const button = event.currentTarget;
  await busy(button, async () => {
    try {
      const answer = await api("POST", SPOTIFY_AUTHORIZE);
      window.location.assign(answer.authorizeUrl);
    } catch (failure) {
      if (!(failure instanceof SignedOut)) {
        $("music-error").textContent = `Could not start linking Spotify: ${failure.message}`;
      }
    }
  });
}

// Back from linking Spotify (the API's spotify_link_return_url): say how it went, once.
function noteSpotifyReturn() {
  const params = new URLSearchParams(window.location.search);
  const outcome = params.get("spotify");
  if (!outcome) return;
  window.history.replaceState(null, "", window.location.pathname);
  if (outcome === "linked") announce("Spotify is linked.");
  else $("music-error").textContent = `Spotify was not linked (${params.get("code") || "error"}).`;
}

// ---------------------------------------------------------------------------------------------
// Start

function init() {
  hooks.signedOut = () =>
    showSignIn(state.me ? "Your session has ended. Please sign in again." : "");
  hooks.enterDashboard = enterDashboard;
  hooks.refresh = () => scheduleRefresh(0);
  hooks.reloadMe = reloadMe;
  channelViews.init();
  window.addEventListener("hashchange", onHashChange);
  $("signin-form").addEventListener("submit", onSignIn);
  $("switch-form").addEventListener("submit", onSwitch);
  $("logout-button").addEventListener("click", onLogout);
  $("manual-start").addEventListener("click", (e) => onManual("POST", e.currentTarget));
  $("manual-stop").addEventListener("click", (e) => onManual("DELETE", e.currentTarget));
  $("spotify-connect").addEventListener("click", onConnectSpotify);
  window.setInterval(tick, 500);
  window.setInterval(() => scheduleRefresh(0), RECONCILE_MS);
  noteSpotifyReturn();
  start();
}

async function start() {
  if (invitation.tokenFromHash()) {
    invitation.show();
    return;
  }
  try {
    enterDashboard(await api("GET", "/v1/me"), false);
  } catch (error) {
    if (error instanceof SignedOut) return;
    $("loading").textContent = `Lumio cannot be reached (${error.message}); trying again…`;
    window.setTimeout(start, 3000);
  }
}

init();
