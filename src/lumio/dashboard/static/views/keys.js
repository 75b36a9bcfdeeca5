// API keys: create (shown once, with a copy button), list, revoke; an Owner sees every key.
import {
  $,
  activeAccount,
  announce,
  api,
  attempt,
  busy,
  button,
  copyField,
  dateTime,
  element,
  mount,
} from "{{asset:core.js}}";

function wire() {
  $("key-form").addEventListener("submit", onCreate);
  $("key-copy").addEventListener("click", () => copyField($("key-secret"), "Key"));
}

const isOwner = () => (activeAccount() || {}).role === "owner";

export async function show() {
  if (mount("view-keys")) wire();
  $("key-secret-wrap").hidden = true;
  $("key-secret").value = "";
  $("account-keys").hidden = !isOwner();
  await reload();
}

async function reload() {
  await attempt($("keys-error"), async () => {
    const own = await api("GET", "/v1/api-keys");
    $("keys-rows").replaceChildren(...own.map((key) => keyRow(key, "own")));
    if (isOwner()) {
      const all = await api("GET", "/v1/api-keys?scope=account");
      $("account-keys-rows").replaceChildren(...all.map((key) => keyRow(key, "account")));
    }
  });
}

function keyRow(key, scope) {
  const row = element("tr");
  row.dataset.prefix = key.prefix;
  const label = key.name || "(no name)";
  const cells = scope === "account" ? [key.userEmail || "—"] : [];
  cells.push(label, `${key.prefix}…`, dateTime(key.createdAt), dateTime(key.lastUsedAt));
  row.append(...cells.map((text) => element("td", null, text)));
  const actions = element("td", "actions");
  if (key.revokedAt) {
    actions.textContent = `Revoked ${dateTime(key.revokedAt)}`;
  } else {
    const revoke = button("Revoke", () => onRevoke(key, scope, revoke));
    revoke.setAttribute("aria-label", `Revoke key ${label} (${key.prefix}…)`);
    actions.append(revoke);
  }
  row.append(actions);
  return row;
}

async function onRevoke(key, scope, node) {
  const query = scope === "account" ? "?scope=account" : "";
  await busy(node, () =>
    attempt($("keys-error"), async () => {
      await api("DELETE", `/v1/api-keys/${key.id}${query}`);
      announce(`Key ${key.name || key.prefix} is revoked: it stops working at once.`);
      await reload();
      $("keys-title").focus();
    }),
  );
}

async function onCreate(event) {
  event.preventDefault();
  const name = $("key-name").value.trim();
  await busy($("key-create"), () =>
    attempt($("keys-error"), async () => {
      const created = await api("POST", "/v1/api-keys", { name });
      $("key-name").value = "";
      $("key-secret").value = created.key;
      $("key-secret-wrap").hidden = false;
      announce("Key created. Copy it now: it is not shown again.");
      await reload();
      $("key-secret").focus();
      $("key-secret").select();
    }),
  );
}
