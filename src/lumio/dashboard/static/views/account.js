// Your account: change the password, see and end your sessions, create an account.
import {
  $,
  announce,
  api,
  attempt,
  busy,
  button,
  dateTime,
  element,
  hooks,
  mount,
} from "{{asset:core.js}}";

function wire() {
  $("password-form").addEventListener("submit", onPassword);
  $("new-account-form").addEventListener("submit", onNewAccount);
}

export async function show() {
  if (mount("view-account")) wire();
  $("password-result").textContent = "";
  await loadSessions();
}

async function loadSessions() {
  await attempt($("sessions-error"), async () => {
    const sessions = await api("GET", "/v1/me/sessions");
    $("sessions").replaceChildren(...sessions.map(sessionItem));
  });
}

function sessionItem(session) {
  const item = element(
    "li",
    null,
    `Signed in ${dateTime(session.createdAt)}, until ${dateTime(session.expiresAt)}`,
  );
  item.dataset.current = String(session.current);
  if (session.current) {
    item.append(element("strong", null, " — this session"));
    return item;
  }
  const end = button("Sign out", () =>
    busy(end, () =>
      attempt($("sessions-error"), async () => {
        await api("DELETE", `/v1/me/sessions/${session.id}`);
        announce("That session is signed out.");
        await loadSessions();
        $("sessions-title").focus();
      }),
    ),
  );
  end.setAttribute("aria-label", `Sign out the session from ${dateTime(session.createdAt)}`);
  item.append(" ", end);
  return item;
}

async function onPassword(event) {
  event.preventDefault();
  const currentPassword = $("password-current").value;
  const newPassword = $("password-new").value;
  const error = $("password-error");
  $("password-result").textContent = "";
  if (!currentPassword || newPassword.length < 8) {
    error.textContent = "Enter your current password and a new one of at least 8 characters.";
    $(currentPassword ? "password-new" : "password-current").focus();
    return;
  }
  await busy($("password-button"), () =>
    attempt(error, async () => {
      await api("PUT", "/v1/me/password", { currentPassword, newPassword });
      $("password-current").value = "";
      $("password-new").value = "";
      $("password-result").textContent =
        "Your password is changed; your other sessions are signed out.";
      await loadSessions();
    }),
  );
  if (error.textContent) $("password-current").focus();
}

async function onNewAccount(event) {
  event.preventDefault();
  const name = $("new-account-name").value.trim();
  const error = $("new-account-error");
  if (!name) {
    error.textContent = "Give the account a name.";
    $("new-account-name").focus();
    return;
  }
  await busy($("new-account-button"), () =>
    attempt(error, async () => {
      const created = await api("POST", "/v1/accounts", { name });
      $("new-account-name").value = "";
      const me = await api("PUT", "/v1/me/active-account", { accountId: created.id });
      window.location.hash = "#/status";
      hooks.enterDashboard(me, true);
      announce(`Account ${created.name} created; you are its Owner.`);
    }),
  );
}
