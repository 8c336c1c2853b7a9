import { api, setToken } from "../api.js";
import { h, replace } from "../dom.js";
import { loggedIn } from "../app.js";

export async function loginPage(ctx) {
  ctx.setTitle("Log in");
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "current-password", required: true, placeholder: "hwe_…" });
  const msg = h("p", { class: "error-text", role: "alert" });
  const form = h("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      msg.textContent = "";
      setToken(input.value.trim());
      try {
        await api.me();
      } catch (err) {
        setToken("");
        msg.textContent = err.status === 401 ? "That token is not valid." : err.message;
        return;
      }
      await loggedIn();
    },
  },
    h("label", { for: "token" }, "API token"),
    input,
    h("button", { type: "submit", class: "primary" }, "Log in"),
    msg,
  );
  replace(ctx.main, h("div", { class: "login panel" },
    h("h1", {}, "Log in to hwe"),
    h("p", { class: "muted" }, "Paste a bearer token from your tenants file (", h("code", {}, "hwe serve token"), " makes one) or $HWE_TOKEN."),
    form));
  input.focus();
}
