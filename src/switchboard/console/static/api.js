// The console's only way to the server: /v1 with the API token (kept in this tab's session
// storage, sent as a bearer token), and the live event stream read with fetch.
const KEY = "switchboard.token";

export const token = () => sessionStorage.getItem(KEY);
export const signOut = () => sessionStorage.removeItem(KEY);

function headers(extra = {}) {
  return { Authorization: `Bearer ${token()}`, "X-Switchboard-Client": "console", ...extra };
}

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** JSON from /v1 (`body` is sent as JSON); a 401 signs the tab out. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const response = await fetch(path, {
    method, signal,
    headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    signOut();
    location.hash = "#/signin";
    throw new ApiError(401, "signed out: the token was refused");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, data?.error?.message ?? data?.detail ?? response.statusText);
  }
  return data;
}

/** A file from /v1 (a call's recording) as a local object URL for <audio>: the page's
 * bearer token cannot ride on a media element's own request. */
export async function blobUrl(path, { signal } = {}) {
  const response = await fetch(path, { signal, headers: headers() });
  if (!response.ok) throw new ApiError(response.status, response.statusText);
  return URL.createObjectURL(await response.blob());
}

/** Whether `candidate` is the API token (kept when it is). */
export async function signIn(candidate) {
  const response = await fetch("/v1/providers", {
    headers: { Authorization: `Bearer ${candidate}` },
  });
  if (!response.ok) return false;
  sessionStorage.setItem(KEY, candidate);
  return true;
}

/**
 * Follow GET /v1/events (server-sent events) until `signal` aborts, reconnecting after
 * errors; `onEvent(type, data)` gets "snapshot" first after each (re)connection.
 */
export async function follow(callId, onEvent, signal) {
  const query = callId ? `?call_id=${encodeURIComponent(callId)}` : "";
  let wait = 250;
  while (!signal.aborted) {
    try {
      const response = await fetch(`/v1/events${query}`, { headers: headers(), signal });
      if (response.status === 401) { signOut(); location.hash = "#/signin"; return; }
      if (!response.ok) throw new Error(`events: ${response.status}`);
      wait = 250;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let type = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) type = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length) onEvent(type, JSON.parse(data.join("\n")));
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      console.warn("event stream:", error);
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 2, 5000);
  }
}
