/**
 * Every request to the master goes through apiFetch: it adds the bearer token, asks the user for a
 * token when the master answers 401, waits out 429/503 answers that carry Retry-After, and turns
 * error bodies ({"error":{"code","message"}}) into ApiError with a readable message. Answers are read
 * through the protocol's zod schemas (services/protocol, bundled with zod as /protocol.js by
 * `npm run build`), as the CLI and the tests read them.
 */
import { errorBody, parseResponse } from './protocol.js';

const TOKEN_KEY = 'dips.token';
const MAX_BUSY_RETRIES = 3;
const MAX_RETRY_AFTER_SECONDS = 30;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** The page listens for this to show whether a token is in use or still needed. */
const tokenStateChanged = () => window.dispatchEvent(new Event('dips:token-state'));

export function storeToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  tokenStateChanged();
}

let askForToken = null;
let pendingTokenRequest = null;
/** After the user cancels the dialog, background polls must not keep reopening it. */
let tokenDeclined = false;

/** Registers the UI that asks for a token: (refused: boolean) => Promise<string>, rejecting on cancel. */
export function setTokenPrompt(prompt) {
  askForToken = prompt;
}

/** Lets the next 401 open the token dialog again (the user asked to enter a token). */
export function allowTokenPrompt() {
  tokenDeclined = false;
  tokenStateChanged();
}

export function tokenWasDeclined() {
  return tokenDeclined;
}

/** One dialog for all requests that hit 401 at the same time. */
function requestToken(refused) {
  if (tokenDeclined) return Promise.reject(new ApiError(401, 'unauthorized', 'This master needs an access token; none was given.'));
  pendingTokenRequest ??= askForToken(refused)
    .catch((error) => {
      tokenDeclined = true;
      tokenStateChanged();
      throw new ApiError(401, 'unauthorized', error.message);
    })
    .finally(() => {
      pendingTokenRequest = null;
    });
  return pendingTokenRequest;
}

export function authHeaders(extra) {
  const headers = new Headers(extra);
  const token = storedToken();
  if (token) headers.set('Authorization', `Bearer ${token}`);
  return headers;
}

export async function apiFetch(path, init = {}) {
  let busyRetries = 0;
  for (;;) {
    const sentToken = storedToken();
    let response;
    try {
      response = await fetch(path, { ...init, headers: authHeaders(init.headers) });
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      throw new ApiError(0, 'unreachable', `The master cannot be reached (${error.message}).`);
    }
    if (response.status === 401 && askForToken) {
      await response.body?.cancel();
      // Another request may already have obtained a fresh token while this one was in flight.
      if (storedToken() === sentToken) storeToken(await requestToken(sentToken !== null));
      continue;
    }
    // Only a busy answer that says when to come back is retried (Number(null) would be 0).
    const retryAfter = Number(response.headers.get('Retry-After') ?? Number.NaN);
    if ((response.status === 429 || response.status === 503) && retryAfter <= MAX_RETRY_AFTER_SECONDS && busyRetries < MAX_BUSY_RETRIES) {
      await response.body?.cancel();
      busyRetries += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.max(retryAfter, 1) * 1000));
      continue;
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }
}

/** GETs (or sends `init`) and reads the answer through its schema: an answer of another shape fails here, naming what differs. */
export async function getJson(path, schema, init) {
  return parseResponse(schema, await apiFetch(path, init));
}

async function errorFrom(response) {
  const text = await response.text().catch(() => '');
  let code = `http_${response.status}`;
  let message = text.trim() || response.statusText;
  try {
    const body = errorBody.safeParse(JSON.parse(text));
    if (body.success) ({ code, message } = body.data.error);
  } catch {
    // Not JSON (a proxy's HTML page, say): keep the text.
  }
  if (message.length > 500) message = `${message.slice(0, 500)}…`;
  return new ApiError(response.status, code, `${message} (HTTP ${response.status})`);
}
