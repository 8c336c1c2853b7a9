// hwe web UI: a tiny router over history.pushState. Each page is a function
// that fills <main> and may register cleanup (closing event streams) for
// when the user navigates away.

import { api, getToken, setToken, setUnauthorizedHandler } from "./api.js";
import { h, replace } from "./dom.js";
import { workflowsPage } from "./pages/workflows.js";
import { workflowPage } from "./pages/workflow.js";
import { editorPage } from "./pages/editor.js";
import { runsPage } from "./pages/runs.js";
import { runPage } from "./pages/run.js";
import { loginPage } from "./pages/login.js";
import { notFoundPage } from "./pages/notfound.js";

const main = document.getElementById("app");
const who = document.getElementById("who");
const logout = document.getElementById("logout");

// session is who the user is: {tenant, actor, role, auth} from /api/v1/me.
const session = { me: null };

const dec = decodeURIComponent;
const routes = [
  [/^\/$/, "workflows", () => workflowsPage],
  [/^\/workflows\/?$/, "workflows", () => workflowsPage],
  [/^\/workflows\/new$/, "workflows", () => (ctx) => editorPage(ctx, null)],
  [/^\/workflows\/([^/]+)\/edit$/, "workflows", (m) => (ctx) => editorPage(ctx, dec(m[1]))],
  [/^\/workflows\/([^/]+)$/, "workflows", (m) => (ctx) => workflowPage(ctx, dec(m[1]))],
  [/^\/runs\/?$/, "runs", () => runsPage],
  [/^\/runs\/([^/]+)$/, "runs", (m) => (ctx) => runPage(ctx, dec(m[1]))],
  [/^\/login$/, "", () => loginPage],
];

let cleanups = [];

export function navigate(path, { replace: rep = false } = {}) {
  if (rep) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

const can = (role) => {
  const order = { viewer: 1, operator: 2, admin: 3 };
  return session.me && order[session.me.role] >= order[role];
};

async function render() {
  for (const f of cleanups) {
    try {
      f();
    } catch {}
  }
  cleanups = [];
  const path = location.pathname;
  let page = notFoundPage;
  let nav = "";
  for (const [re, section, make] of routes) {
    const m = re.exec(path);
    if (m) {
      page = make(m);
      nav = section;
      break;
    }
  }
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === nav);
  if (page !== loginPage && !session.me) {
    const ok = await loadSession();
    if (!ok) return;
  }
  const ctx = {
    main, navigate, session, can,
    onLeave: (f) => cleanups.push(f),
    setTitle: (t) => (document.title = t ? t + " · hwe" : "hwe"),
  };
  replace(main, h("p", { class: "muted" }, "Loading…"));
  window.scrollTo(0, 0);
  try {
    await page(ctx);
  } catch (err) {
    replace(main, h("div", { class: "banner error" }, "Error: " + (err.message || err)));
  }
}

// loadSession asks the server who we are; without a valid token it shows the login.
async function loadSession() {
  try {
    session.me = await api.me();
  } catch (err) {
    if (err.status === 401) {
      // request() already called the unauthorized handler, which remembered
      // this page and went to the login.
    } else {
      replace(main, h("div", { class: "banner error" }, "Cannot reach the hwe server: " + err.message));
    }
    return false;
  }
  who.textContent = session.me.auth ? `${session.me.actor} · ${session.me.tenant} · ${session.me.role}` : "";
  logout.hidden = !session.me.auth || !getToken();
  return true;
}

export async function loggedIn() {
  session.me = null;
  if (!(await loadSession())) return false;
  const next = sessionStorage.getItem("hwe.after-login") || "/";
  sessionStorage.removeItem("hwe.after-login");
  navigate(next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
  return true;
}

// rememberPage keeps where the user was going, to return there after login.
function rememberPage() {
  if (location.pathname !== "/login") sessionStorage.setItem("hwe.after-login", location.pathname + location.search);
}

setUnauthorizedHandler(() => {
  if (location.pathname === "/login") return;
  session.me = null;
  rememberPage();
  navigate("/login", { replace: true });
});

logout.addEventListener("click", () => {
  setToken("");
  session.me = null;
  who.textContent = "";
  logout.hidden = true;
  navigate("/login");
});

// Same-origin links navigate inside the app.
document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download") || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname === "/metrics") return;
  ev.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", render);
render();
