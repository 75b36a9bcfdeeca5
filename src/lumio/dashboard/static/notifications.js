// Lumio dashboard, Notifications view: the account's webhook endpoints (/v1/webhooks).
// A module of its own: it reads /v1/me for the CSRF token and permissions, and shows itself
// when the dashboard is shown to someone with webhooks:manage.

const EVENTS = [
  "went_online", "went_offline", "stream_updated", "manual_started", "manual_stopped",
  "now_playing_changed", "test",
];
const SAMPLE = { platform: "Twitch", title: "Speedrun night", category: "Celeste",
  url: "https://www.twitch.tv/example", viewers: "42" };
const $ = (id) => document.getElementById(id);
const view = { csrf: null, hooks: [], shownDeliveries: null };

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && view.csrf) headers["X-CSRF-Token"] = view.csrf;
  const response = await fetch(path, { method, headers, credentials: "same-origin",
    cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && (data.detail || data.title)) || `failed (${response.status})`);
  return data;
}

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function button(label, onClick) {
  const node = el("button", label, { type: "button" });
  node.addEventListener("click", () => run(onClick));
  return node;
}

async function run(action) {
  $("hooks-error").textContent = "";
  try {
    await action();
  } catch (error) {
    $("hooks-error").textContent = error.message;
  }
}

function health(hook) {
  if (!hook.enabled) return hook.disabledReason ? `disabled: ${hook.disabledReason}` : "disabled";
  if (hook.failingSince) return `failing since ${new Date(hook.failingSince).toLocaleString()}`;
  if (hook.lastDeliveryAt) return `healthy, last delivery ${new Date(hook.lastDeliveryAt).toLocaleString()}`;
  return "no delivery yet";
}

function row(hook) {
  const tr = el("tr");
  const name = el("td");
  name.append(el("strong", hook.description || hook.kind), el("br"), el("code", hook.url));
  tr.append(name, el("td", hook.events.join(", ")), el("td", health(hook)));
  const actions = el("td");
  actions.append(
    button("Send test", () => call("POST", `/v1/webhooks/${hook.id}/test`).then(() => showDeliveries(hook))),
    button("Deliveries", () => showDeliveries(hook)),
    button("Edit", () => edit(hook)),
    button(hook.enabled ? "Disable" : "Enable", () => patch(hook, { enabled: !hook.enabled })),
    button("Rotate secret", () => rotate(hook)),
    button("Delete", () => remove(hook)),
  );
  tr.append(actions);
  return tr;
}

async function load() {
  view.hooks = await call("GET", "/v1/webhooks");
  $("hook-rows").replaceChildren(...view.hooks.map(row));
}

function showSecret(created) {
  const line = $("hook-secret");
  line.replaceChildren("Signing secret (shown once, copy it now): ", el("code", created.secret));
  line.hidden = created.kind === "discord";
}

async function patch(hook, changes) {
  await call("PATCH", `/v1/webhooks/${hook.id}`, changes);
  await load();
}

async function rotate(hook) {
  showSecret(await call("POST", `/v1/webhooks/${hook.id}/rotate-secret`));
  await load();
}

async function remove(hook) {
  if (!window.confirm(`Delete the endpoint ${hook.url}?`)) return;
  await call("DELETE", `/v1/webhooks/${hook.id}`);
  $("deliveries").hidden = true;
  await load();
}

async function showDeliveries(hook) {
  view.shownDeliveries = hook;
  const deliveries = await call("GET", `/v1/webhooks/${hook.id}/deliveries`);
  $("deliveries-title").textContent = `Recent deliveries to ${hook.url}`;
  $("delivery-rows").replaceChildren(...deliveries.map((d) => {
    const item = el("li", `${new Date(d.createdAt).toLocaleString()} ${d.eventType}: ${d.state}`
      + (d.responseStatus ? ` (HTTP ${d.responseStatus}, ${d.latencyMs} ms)` : "")
      + (d.error ? ` — ${d.error}` : "") + ` · ${d.attempts} attempt(s) `);
    item.append(button("Redeliver", async () => {
      await call("POST", `/v1/webhooks/${hook.id}/deliveries/${d.id}/redeliver`);
      await showDeliveries(hook);
    }));
    return item;
  }));
  $("deliveries").hidden = false;
}

function preview() {
  const template = $("hook-template").value || "{title} is live on {platform}: {url}";
  $("hook-preview").textContent = template.replace(
    /\{(platform|title|category|url|viewers)\}/g, (_, key) => SAMPLE[key]);
}

function kindChanged() {
  $("hook-template-wrap").hidden = $("hook-kind").value !== "discord";
  preview();
}

function edit(hook) {
  $("hook-id").value = hook.id;
  $("hook-kind").value = hook.kind;
  $("hook-kind").disabled = true;
  $("hook-url").value = hook.url;
  $("hook-description").value = hook.description;
  $("hook-template").value = hook.template || "";
  for (const box of $("hook-events").querySelectorAll("input")) box.checked = hook.events.includes(box.value);
  $("hook-form-title").textContent = "Edit the endpoint";
  $("hook-save").textContent = "Save";
  $("hook-cancel").hidden = false;
  kindChanged();
  $("hook-url").focus();
}

function resetForm() {
  $("hook-form").reset();
  $("hook-id").value = "";
  $("hook-kind").disabled = false;
  $("hook-form-title").textContent = "Add an endpoint";
  $("hook-save").textContent = "Add endpoint";
  $("hook-cancel").hidden = true;
  kindChanged();
}

async function save(event) {
  event.preventDefault();
  const events = [...$("hook-events").querySelectorAll("input:checked")].map((b) => b.value);
  const body = { url: $("hook-url").value, description: $("hook-description").value, events };
  const template = $("hook-template").value || null;
  const id = $("hook-id").value;
  if (id) {
    await call("PATCH", `/v1/webhooks/${id}`, { ...body, template });
  } else {
    showSecret(await call("POST", "/v1/webhooks", { ...body, kind: $("hook-kind").value, template }));
  }
  resetForm();
  await load();
}

async function refresh() {
  const me = await call("GET", "/v1/me").catch(() => null);
  const allowed = Boolean(me && (me.permissions || []).includes("webhooks:manage"));
  view.csrf = me && me.csrfToken;
  $("notifications").hidden = !allowed;
  if (allowed) await run(load);
}

function setUp() {
  $("hook-events").append(...EVENTS.map((name) => {
    const label = el("label");
    const box = el("input", undefined, { type: "checkbox", value: name });
    box.checked = name === "went_online" || name === "went_offline";
    label.append(box, ` ${name}`);
    return label;
  }));
  $("hook-kind").addEventListener("change", kindChanged);
  $("hook-template").addEventListener("input", preview);
  $("hook-form").addEventListener("submit", (event) => run(() => save(event)));
  $("hook-cancel").addEventListener("click", resetForm);
  kindChanged();
  // Shown (or the account switched, which re-shows the dashboard): read again.
  new MutationObserver(() => { if (!$("dashboard").hidden) refresh(); })
    .observe($("dashboard"), { attributes: true, attributeFilter: ["hidden"] });
  if (!$("dashboard").hidden) refresh();
}

setUp();
