// Joining through an invitation link (#invitation=TOKEN): choose a password, then sign in.
import { $, ApiError, api, attempt, busy, hooks, mount } from "{{asset:core.js}}";

export function tokenFromHash() {
  const match = window.location.hash.match(/^#invitation=([\w-]+)$/);
  return match ? match[1] : null;
}

export function show() {
  if (mount("invitation")) $("invitation-form").addEventListener("submit", onAccept);
  $("loading").hidden = true;
  $("signin").hidden = true;
  $("dashboard").hidden = true;
  $("session-bar").hidden = true;
  $("views-nav").hidden = true;
  $("invitation").hidden = false;
  $("invitation-password").focus();
}

async function onAccept(event) {
  event.preventDefault();
  const token = tokenFromHash();
  const password = $("invitation-password").value;
  const error = $("invitation-error");
  if (password.length < 8) {
    error.textContent = "Choose a password of at least 8 characters.";
    $("invitation-password").focus();
    return;
  }
  await busy($("invitation-button"), () =>
    attempt(error, async () => {
      let joined;
      try {
        joined = await api("POST", "/v1/invitations/accept", { token, password });
      } catch (failure) {
        if (failure instanceof ApiError && failure.status === 404) {
          throw new Error("This invitation link is unknown, used already or expired.");
        }
        throw failure;
      }
      const me = await api("POST", "/v1/auth/login", { email: joined.email, password });
      // Forget the secret: the link works once, and the address bar should not keep it.
      window.history.replaceState(null, "", window.location.pathname);
      hooks.enterDashboard(me, true);
    }),
  );
}
