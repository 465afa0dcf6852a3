/** Entry point: routing between the account screens, the messenger and the admin panel. */
import "./styles.css";
import { api, type UserPublic } from "./api";
import { Messenger } from "./messenger";
import { AdminScreen } from "./ui/admin";
import { forgotPasswordView, loginView, registerView, resetPasswordView, verifyView } from "./ui/auth";
import { ChatScreen } from "./ui/chat/screen";
import { DeviceAlerts } from "./ui/devices";
import { clear, h, messageOf } from "./ui/dom";
import { settingsView } from "./ui/settings";
import { applyTheme, themeToggle } from "./ui/theme";
import { LiveConnection } from "./ws";

applyTheme();
const app = document.getElementById("app")!;
const live = new LiveConnection(api);
let messenger: Messenger | null = null;
let deviceAlerts: DeviceAlerts | null = null;
let chat: ChatScreen | null = null;
let content: HTMLElement | null = null;
let statusDot: HTMLElement | null = null;

const PUBLIC_ROUTES = new Set(["/login", "/register", "/verify", "/forgot-password", "/reset-password"]);

function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else if (location.pathname + location.search !== path) history.pushState(null, "", path);
  // the access token lives in memory only: a page load asks for one with the refresh cookie
void api.restore().finally(() => void route());
}

document.addEventListener("click", (e) => {
  const a = (e.target as Element | null)?.closest?.("a[data-route]") as HTMLAnchorElement | null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  navigate(a.getAttribute("href")!);
});
window.addEventListener("popstate", () => void route());

function teardownSession(): void {
  chat?.unmount();
  chat = null;
  content = null;
  messenger = null;
  deviceAlerts?.stop();
  deviceAlerts = null;
  live.stop();
}

api.onSessionChange((s) => {
  if (!s && messenger) {
    teardownSession();
    navigate("/login?expired=1", true);
  }
});

function showConnection(state: LiveConnection["state"]): void {
  if (!statusDot) return;
  const text = state === "ready" ? "Live" : state === "connecting" ? "Connecting…" : "Offline";
  statusDot.className = `conn ${state}`;
  statusDot.textContent = text;
  statusDot.setAttribute("aria-label", `Connection: ${text}`);
}
live.onState(showConnection);

async function logout(): Promise<void> {
  try {
    await api.logout();
  } catch {
    /* the session is dropped locally anyway */
  }
  teardownSession();
  api.clear();
  navigate("/login", true);
}

function shell(me: UserPublic): HTMLElement {
  statusDot = h("span", { class: "conn", role: "status" });
  showConnection(live.state);
  const nav = h(
    "nav",
    { "aria-label": "Main" },
    h("a", { href: "/", "data-route": "" }, "Chats"),
    me.role === "admin" ? h("a", { href: "/admin", "data-route": "" }, "Admin") : null,
    h("a", { href: "/settings", "data-route": "" }, "Settings"),
  );
  content = h("div", { class: "content" });
  const alerts = h("div", { class: "device-alerts", "aria-live": "assertive" });
  clear(
    app,
    h(
      "div",
      { class: "shell" },
      h(
        "header",
        { class: "topbar" },
        h("a", { class: "brand", href: "/", "data-route": "" }, "ChainChat"),
        nav,
        h("div", { class: "me" }, statusDot, h("span", { class: "me-name" }, me.display_name), themeToggle(), h("button", { type: "button", class: "secondary small", onclick: () => void logout() }, "Log out")),
      ),
      alerts,
      content,
    ),
  );
  deviceAlerts?.mount(alerts);
  return content;
}

async function startSession(): Promise<void> {
  if (messenger) return;
  let me = api.user!;
  try {
    me = await api.me();
    api.updateUser(me);
  } catch {
    /* keep the user from the login reply */
  }
  messenger = await Messenger.start(api, me);
  deviceAlerts = new DeviceAlerts(messenger, live);
  live.start();
}

async function route(): Promise<void> {
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  if (PUBLIC_ROUTES.has(path)) {
    if (path === "/verify") return verifyView(app, params.get("token"));
    if (path === "/reset-password") return resetPasswordView(app, params.get("token"));
    if (path === "/register") return registerView(app);
    if (path === "/forgot-password") return forgotPasswordView(app);
    if (api.loggedIn) return navigate("/", true);
    return loginView(app, navigate, () => navigate("/", true), params.get("expired") ? "Your session ended. Please log in again." : undefined);
  }
  if (!api.loggedIn) return navigate("/login", true);
  try {
    if (!messenger) {
      clear(app, h("p", { class: "splash", role: "status" }, "Preparing your encryption keys…"));
      await startSession();
    }
  } catch (err) {
    clear(app, h("div", { class: "auth-card" }, h("h1", { class: "brand" }, "ChainChat"), h("p", { class: "error", role: "alert" }, `Could not start: ${messageOf(err)}`), h("button", { type: "button", onclick: () => void logout() }, "Log out")));
    return;
  }
  const m = messenger!;
  const match = /^\/c\/([^/]+)$/.exec(path);
  if (path === "/" || match) {
    const id = match ? decodeURIComponent(match[1]!) : null;
    if (chat && content?.isConnected) return chat.show(id);
    const root = shell(m.me);
    chat = new ChatScreen(root, api, m, live, navigate);
    return chat.mount(id);
  }
  chat?.unmount();
  chat = null;
  const root = shell(m.me);
  if (path === "/admin") {
    if (m.me.role !== "admin") return void clear(root, h("p", { class: "error", role: "alert" }, "Only administrators can open this page."));
    return new AdminScreen(root, api, m.me.id).mount();
  }
  if (path === "/settings") return settingsView(root, api, m);
  clear(root, h("main", { class: "admin" }, h("h1", null, "Not found"), h("p", null, "There is nothing at this address. "), h("a", { href: "/", "data-route": "" }, "Back to your chats")));
}

// the access token lives in memory only: a page load asks for one with the refresh cookie
void api.restore().finally(() => void route());
