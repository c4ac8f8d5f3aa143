// The Studio's one way to the node: the public HTTP API, same origin only (the browser
// presents the client certificate). Errors keep the server's own message.

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.type = type || '';
  }
}

// The node did not answer at all (down, or the network between).
export class NodeDown extends Error {}

const listeners = { twofactor: [], down: [], up: [] };
export function on(event, fn) { listeners[event].push(fn); }
function emit(event, arg) { for (const fn of listeners[event]) fn(arg); }

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

// A node answers 503 NotReady, before it does anything, while it catches up or its read lease
// lapsed for a moment (a loaded machine, an election): asked again for a few seconds, as
// RavenDB's clients do, before the Studio shows it.
const NOT_READY_RETRIES = 20;
const NOT_READY_PAUSE_MS = 250;

// request(method, path, {query, json}) -> Response (2xx), or throws ApiError / NodeDown.
// A 428 (a certificate that needs its two-factor session) is also announced, so that the Studio
// shows its two-factor screen whichever call met it.
export async function request(method, path, opts = {}) {
  for (let i = 0; ; i += 1) {
    try {
      return await requestOnce(method, path, opts);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 503 && e.type === 'NotReady') || i >= NOT_READY_RETRIES) throw e;
      await new Promise((r) => { setTimeout(r, NOT_READY_PAUSE_MS); });
    }
  }
}

async function requestOnce(method, path, opts) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: {} };
  if (opts.json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.json);
  }
  let res;
  try {
    res = await fetch(path + query(opts.query), init);
  } catch (e) {
    const err = new NodeDown(`${location.origin} does not answer (${e.message})`);
    emit('down', err);
    throw err;
  }
  emit('up');
  if (res.ok) return res;
  let type = '', message = '';
  const text = await res.text().catch(() => '');
  try {
    const o = JSON.parse(text);
    type = o.Type || '';
    message = o.Message || o.Error || '';
  } catch {
    message = text.slice(0, 300);
  }
  const err = new ApiError(res.status, type, message || `${method} ${path}: HTTP ${res.status}`);
  if (res.status === 428) emit('twofactor', err);
  throw err;
}

export async function getJson(path, q) {
  const res = await request('GET', path, { query: q });
  if (res.status === 204) return null;
  return res.json();
}

// The file name of a Content-Disposition header (RavenDB percent-encodes it).
function filenameOf(res, fallback) {
  const cd = res.headers.get('Content-Disposition') || '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  if (!m) return fallback;
  try { return decodeURIComponent(m[1]); } catch { return m[1]; }
}

// Hands a response's body to the browser as a download; returns the file name.
export async function saveResponse(res, fallback) {
  const name = filenameOf(res, fallback);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return name;
}

export function b64(bytes) {
  let s = '';
  const u = new Uint8Array(bytes);
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
  return btoa(s);
}
