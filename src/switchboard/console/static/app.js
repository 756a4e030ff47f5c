// The console's entry: sign-in, then the view the location hash names.
import { signIn, signOut, token } from "./api.js";
import { h } from "./format.js";
import { showLive } from "./live.js";
import { showCall } from "./call.js";
import { showHistory } from "./history.js";
import { showPlayground } from "./playground.js";

const view = document.getElementById("view");
const nav = document.querySelector("nav");
let current = null; // the shown view's AbortController: leaving a view ends its streams

function showSignIn(signal) {
  nav.hidden = true;
  const error = h("p", { class: "error", role: "alert" });
  const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true });
  const form = h("form", { class: "signin", "aria-label": "Sign in" },
    h("h2", {}, "Sign in"),
    h("p", {}, "The API token (SWITCHBOARD_API_TOKEN, or the one switchboard serve printed)."),
    h("label", {}, "API token", input),
    h("p", {}, h("button", { type: "submit" }, "Sign in")),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await signIn(input.value.trim())) location.hash = "#/live";
    else error.textContent = "That token was refused.";
  }, { signal });
  view.replaceChildren(form);
  input.focus();
}

function route() {
  current?.abort();
  current = new AbortController();
  const signal = current.signal;
  const hash = location.hash || "#/live";
  if (!token()) { showSignIn(signal); return; }
  nav.hidden = false;
  const call = hash.match(/^#\/calls\/([\w.-]+)$/);
  if (call) showCall(view, call[1], signal);
  else if (hash.startsWith("#/history")) showHistory(view, signal);
  else if (hash.startsWith("#/playground")) showPlayground(view, signal);
  else showLive(view, signal);
}

document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  location.hash = "#/signin";
});
window.addEventListener("hashchange", route);

// `switchboard demo --keep` prints /console/#token=…&call=…: sign in with it, forget it (the
// fragment never reaches a server), and show the call.
async function start() {
  const given = new URLSearchParams(location.hash.slice(1));
  if (given.has("token")) {
    const call = given.get("call");
    const ok = await signIn(given.get("token"));
    history.replaceState(null, "", ok && call ? `#/calls/${encodeURIComponent(call)}` : "#/live");
  }
  route();
}
start();
