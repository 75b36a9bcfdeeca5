// Members and roles: list, change a role, remove, add or invite by email.
import {
  $,
  ROLE_NAMES,
  ROLES,
  activeAccount,
  announce,
  api,
  attempt,
  busy,
  button,
  confirmInline,
  copyField,
  dateTime,
  element,
  hooks,
  mount,
  state,
} from "{{asset:core.js}}";

function wire() {
  $("invite-form").addEventListener("submit", onInvite);
  $("invite-copy").addEventListener("click", () => copyField($("invite-link"), "Invitation link"));
}

const isOwner = () => (activeAccount() || {}).role === "owner";
// An Administrator manages everyone but Owners, and makes no Owner.
const assignable = () => ROLES.filter((role) => role !== "owner" || isOwner());

function roleOptions(select, current) {
  select.replaceChildren(
    ...assignable().map((role) => {
      const option = element("option", null, ROLE_NAMES[role]);
      option.value = role;
      option.selected = role === current;
      return option;
    }),
  );
}

export async function show() {
  if (mount("view-members")) wire();
  roleOptions($("invite-role"), "moderator");
  await attempt($("members-error"), async () => {
    const [members, invitations] = await Promise.all([
      api("GET", "/v1/members"),
      api("GET", "/v1/invitations"),
    ]);
    renderMembers(members);
    renderInvitations(invitations);
  });
}

function renderMembers(members) {
  $("members-rows").replaceChildren(...members.map(memberRow));
}

function memberRow(member) {
  const row = element("tr");
  row.dataset.email = member.email;
  const you = member.userId === state.me.userId ? " (you)" : "";
  const email = element("th", null, member.email + you);
  email.scope = "row";
  const role = element("td");
  const actions = element("td", "actions");
  const manageable = member.role !== "owner" || isOwner();
  if (!manageable) {
    role.textContent = ROLE_NAMES[member.role];
    actions.textContent = "Only an Owner can change an Owner.";
  } else {
    const select = element("select");
    select.id = `role-${member.userId}`;
    select.setAttribute("aria-label", `Role of ${member.email}`);
    roleOptions(select, member.role);
    role.append(select);
    const change = button("Change role", () => changeRole(member, select, change));
    change.setAttribute("aria-label", `Change role of ${member.email}`);
    const remove = button("Remove", () => askRemove(member, remove));
    remove.setAttribute("aria-label", `Remove ${member.email}`);
    actions.append(change, " ", remove);
  }
  row.append(email, role, actions);
  return row;
}

async function changeRole(member, select, node) {
  await busy(node, () =>
    attempt($("members-error"), async () => {
      const changed = await api("PUT", `/v1/members/${member.userId}`, { role: select.value });
      announce(`${member.email} is now ${ROLE_NAMES[changed.role]}.`);
      await afterChange(member);
    }),
  );
}

function askRemove(member, node) {
  confirmInline(node, `Remove ${member.email}?`, "Yes, remove", () =>
    attempt($("members-error"), async () => {
      await api("DELETE", `/v1/members/${member.userId}`);
      announce(`${member.email} was removed.`);
      await afterChange(member);
    }),
  );
}

// Changing one's own role changes what the page offers: re-read /v1/me first.
async function afterChange(member) {
  if (member.userId === state.me.userId) {
    await hooks.reloadMe();
    if (!state.permissions.has("members:manage")) {
      window.location.hash = "#/status";
      return;
    }
  }
  await show();
  $("members-title").focus();
}

function renderInvitations(invitations) {
  const list = $("invitations");
  if (!invitations.length) {
    list.replaceChildren(element("li", "notice", "No pending invitations."));
    return;
  }
  list.replaceChildren(
    ...invitations.map((invitation) => {
      const item = element(
        "li",
        null,
        `${invitation.email} as ${ROLE_NAMES[invitation.role]}, valid until ${dateTime(invitation.expiresAt)} `,
      );
      const revoke = button("Revoke", () =>
        busy(revoke, () =>
          attempt($("members-error"), async () => {
            await api("DELETE", `/v1/invitations/${invitation.id}`);
            announce(`The invitation of ${invitation.email} is revoked.`);
            await show();
          }),
        ),
      );
      revoke.setAttribute("aria-label", `Revoke the invitation of ${invitation.email}`);
      item.append(revoke);
      return item;
    }),
  );
}

async function onInvite(event) {
  event.preventDefault();
  const email = $("invite-email").value.trim();
  const role = $("invite-role").value;
  const result = $("invite-result");
  $("invite-link-wrap").hidden = true;
  result.textContent = "";
  if (!email) {
    $("members-error").textContent = "Enter the new member's email.";
    $("invite-email").focus();
    return;
  }
  await busy($("invite-button"), () =>
    attempt($("members-error"), async () => {
      const outcome = await api("POST", "/v1/invitations", { email, role });
      $("invite-email").value = "";
      if (outcome.member) {
        result.textContent = `${outcome.member.email} was added as ${ROLE_NAMES[outcome.member.role]}.`;
      } else {
        result.textContent = `${email} has no Lumio login yet: send them this link.`;
        $("invite-link").value = window.location.origin + outcome.invitation.path;
        $("invite-link-wrap").hidden = false;
      }
      const answer = await Promise.all([api("GET", "/v1/members"), api("GET", "/v1/invitations")]);
      renderMembers(answer[0]);
      renderInvitations(answer[1]);
      if (!$("invite-link-wrap").hidden) $("invite-link").focus();
    }),
  );
}
