// What every view shares: the API call, the signed-in state, small DOM helpers.
// Vanilla JS modules, no framework: the app is small, has no build step, and the CSP allows only
// its own files (docs: README "Dashboard").

export const PLATFORMS = ["twitch", "youtube", "kick", "trovo"];
export const PLATFORM_NAMES = { twitch: "Twitch", youtube: "YouTube", kick: "Kick", trovo: "Trovo" };
export const ROLES = ["owner", "administrator", "moderator", "viewer"];
export const ROLE_NAMES = {
  owner: "Owner",
  administrator: "Administrator",
  moderator: "Moderator",
  viewer: "Viewer",
};

export const $ = (id) => document.getElementById(id);

export class SignedOut extends Error {}

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super((body && (body.detail || body.title)) || `request failed (${status})`);
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

export const state = {
  me: null,
  csrf: null,
  permissions: new Set(),
  channels: [],
  statuses: [],
  manual: null, // {active, remainingSeconds, deadline}
  // undefined: unknown (not deployed, or unreachable); null: none; else the API's answer.
  spotifyLink: undefined,
  nowPlaying: undefined,
  clockSkewMs: 0,
};

// Set by the page: what to do when the session has ended (a 401), how to enter the dashboard,
// re-read the status and re-read /v1/me (the views call these).
export const hooks = {
  signedOut: () => {},
  enterDashboard: () => {},
  refresh: () => {},
  reloadMe: async () => {},
};

// The few calls that a 401 answers without ending a session (a wrong password).
const NO_SIGN_OUT = new Set(["/v1/auth/login", "/v1/invitations/accept"]);

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  noteServerClock(response);
  let data = null;
  if (response.status !== 204) {
    data = await response.json().catch(() => null);
  }
  if (response.status === 401 && !NO_SIGN_OUT.has(path)) {
    hooks.signedOut();
    throw new SignedOut();
  }
  if (!response.ok) {
    const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    throw new ApiError(response.status, data, Number.isNaN(retry) ? null : retry);
  }
  return data;
}

function noteServerClock(response) {
  // Uptime is counted from the server's startedAt: correct a clearly wrong local clock.
  const date = Date.parse(response.headers.get("Date") || "");
  if (Number.isNaN(date)) return;
  const skew = date - Date.now();
  state.clockSkewMs = Math.abs(skew) > 5000 ? skew : 0;
}

export const now = () => Date.now() + state.clockSkewMs;
export const can = (permission) => state.permissions.has(permission);

export function activeAccount() {
  return state.me ? state.me.accounts.find((a) => a.active) || null : null;
}

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function button(text, onClick, className) {
  const node = element("button", className, text);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

export function announce(text) {
  const announcer = $("announcer");
  announcer.textContent = "";
  window.setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

export async function busy(node, action) {
  node.disabled = true;
  try {
    await action();
  } finally {
    node.disabled = false;
  }
}

// Run an action whose failure is shown in ``errorNode`` (a 401 has already sent the user away).
export async function attempt(errorNode, action) {
  try {
    errorNode.textContent = "";
    await action();
  } catch (failure) {
    if (failure instanceof SignedOut) return;
    errorNode.textContent = failure.message;
  }
}

// "14:02", local time.
export function clockTime(iso) {
  const at = new Date(iso);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(at.getHours())}:${two(at.getMinutes())}`;
}

export function dateTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "never";
}

// Copy a read-only field's text; the field is selected too, for a manual copy where the
// clipboard is not allowed.
export async function copyField(input, label) {
  input.focus();
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    announce(`${label} copied.`);
  } catch {
    announce(`Press Control+C to copy the ${label.toLowerCase()}.`);
  }
}

// An inline "are you sure" in place of a button: no modal, focus stays where the user is.
export function confirmInline(host, question, yesLabel, onYes) {
  const box = element("span", "confirm");
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", question);
  const text = element("span", null, question);
  const cancel = button("Cancel", () => {
    box.remove();
    host.hidden = false;
    host.focus();
  });
  const yes = button(yesLabel, () => busy(yes, onYes), "danger");
  box.append(text, " ", yes, " ", cancel);
  host.hidden = true;
  host.after(box);
  yes.focus();
  return box;
}

// A view's controls live in a <template> and exist in the page only while the view is shown:
// a hidden form cannot be filled by mistake, and its labels never clash with the sign-in form's.
// True when the view was (re)built, so that the caller wires its controls.
export function mount(sectionId) {
  const section = $(sectionId);
  if (section.childElementCount) return false;
  section.replaceChildren($(`template-${sectionId}`).content.cloneNode(true));
  return true;
}

export function unmount(sectionId) {
  $(sectionId).replaceChildren();
}
