// Linking and unlinking channels, and what each card says about its platform's answers.
import {
  $,
  ApiError,
  PLATFORM_NAMES,
  SignedOut,
  announce,
  api,
  busy,
  button,
  can,
  clockTime,
  confirmInline,
  element,
  hooks,
} from "{{asset:core.js}}";

let preview = null; // the platform's last answer, linked on "Link this channel"

export function init() {
  $("link-form").addEventListener("submit", onCheck);
  $("link-save").addEventListener("click", onLink);
  $("link-channel").addEventListener("input", clearPreview);
  $("link-platform").addEventListener("change", clearPreview);
}

export function applyPermissions() {
  $("link-form").hidden = !can("channels:manage");
}

function clearPreview() {
  preview = null;
  $("link-preview").hidden = true;
  $("link-error").textContent = "";
}

async function onCheck(event) {
  event.preventDefault();
  const platform = $("link-platform").value;
  const channel = $("link-channel").value.trim();
  clearPreview();
  if (!channel) {
    $("link-error").textContent = "Paste the channel's URL, handle or login.";
    $("link-channel").focus();
    return;
  }
  await busy($("link-check"), async () => {
    try {
      const query = new URLSearchParams({ platform, channel });
      // Linking sends what the user typed again: not every platform resolves its own ids.
      preview = { ...(await api("GET", `/v1/channels/preview?${query}`)), typed: channel };
      showPreview(preview);
    } catch (failure) {
      if (failure instanceof SignedOut) return;
      $("link-error").textContent =
        failure instanceof ApiError && failure.status === 404
          ? `This channel does not exist on ${PLATFORM_NAMES[platform]}.`
          : failure.message;
    }
  });
}

function showPreview(found) {
  const avatar = $("link-avatar");
  // Only https pictures: the page's CSP allows no other origin over plain http.
  avatar.hidden = !(found.avatarUrl && found.avatarUrl.startsWith("https://"));
  if (!avatar.hidden) avatar.src = found.avatarUrl;
  const name = PLATFORM_NAMES[found.platform];
  $("link-preview-text").textContent = `${name} channel found: ${found.displayName} (id ${found.channelId}).`;
  $("link-preview").hidden = false;
  $("link-save").focus();
}

async function onLink() {
  if (!preview) return;
  const chosen = preview;
  await busy($("link-save"), async () => {
    try {
      await api("POST", "/v1/channels", { platform: chosen.platform, channel: chosen.typed });
      $("link-channel").value = "";
      clearPreview();
      announce(`${PLATFORM_NAMES[chosen.platform]} channel ${chosen.displayName} is linked.`);
      hooks.refresh();
      $("link-channel").focus();
    } catch (failure) {
      if (!(failure instanceof SignedOut)) $("link-error").textContent = failure.message;
    }
  });
}

// The card's extra lines: the platform's health and the unlink control (the push status line
// is the dashboard's own, filled from pushStatus).
export function extendCard(article, platform) {
  const health = element("p", "health");
  health.dataset.field = "health";
  const controls = element("div", "card-controls");
  const name = PLATFORM_NAMES[platform] || platform;
  const unlink = button(`Unlink ${name}`, () => askUnlink(unlink, platform));
  unlink.dataset.action = "unlink";
  controls.append(unlink);
  article.append(health, controls);
}

export function fillCard(card, platform, channel) {
  const health = card.querySelector('[data-field="health"]');
  health.textContent = channel ? healthText(platform, channel) : "";
  health.dataset.stale = String(Boolean(channel && channel.stale));
  card.querySelector(".card-controls").hidden = !(channel && can("channels:manage"));
}

function healthText(platform, channel) {
  const name = PLATFORM_NAMES[platform] || platform;
  const kind = channel.errorKind ? ` Last error: ${channel.errorKind}.` : "";
  if (channel.stale && channel.errorSince) {
    return `${name} has not answered since ${clockTime(channel.errorSince)} — the status shown may be out of date.${kind}`;
  }
  if (channel.lastError) {
    const since = channel.errorSince ? ` since ${clockTime(channel.errorSince)}` : "";
    return `${name} answered with an error${since}; retrying.${kind}`;
  }
  return "";
}

function askUnlink(unlink, platform) {
  const name = PLATFORM_NAMES[platform] || platform;
  const box = confirmInline(unlink, `Unlink the ${name} channel?`, `Yes, unlink ${name}`, async () => {
    try {
      await api("DELETE", `/v1/channels/${platform}`);
      announce(`The ${name} channel is unlinked.`);
      box.remove();
      hooks.refresh();
      $("link-channel").focus();
    } catch (failure) {
      if (!(failure instanceof SignedOut)) $("dashboard-error").textContent = failure.message;
    }
  });
}
