// Small formatting and DOM helpers shared by the views.

/** An element with attributes and children (strings become text, never HTML). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

export const seconds = (s) => {
  if (s === null || s === undefined) return "–";
  const total = Math.max(0, Math.round(s));
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
};
export const ms = (v) => (v === null || v === undefined ? "–" : `${Math.round(v)} ms`);
export const usd = (v) => (v === null || v === undefined ? "–" : `$${Number(v).toFixed(4)}`);
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

export function status(text, error = false) {
  const node = document.getElementById("status");
  node.textContent = text;
  node.className = error ? "error" : "";
}
