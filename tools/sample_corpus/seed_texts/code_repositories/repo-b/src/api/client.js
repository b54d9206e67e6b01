import { sleep } from "../timing.js";

const DEFAULT_RETRIES = 3;
const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

export class ApiError extends Error {
  constructor(message, { status, body } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/**
 * A thin wrapper around fetch() with JSON handling, timeouts and
 * exponential back-off for transient failures.
 */
export class ApiClient {
  constructor(baseUrl, { token = null, timeoutMs = 10000, retries = DEFAULT_RETRIES } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token;
    this.timeoutMs = timeoutMs;
    this.retries = retries;
  }

  async request(method, path, { query, body, headers = {} } = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }

    const init = {
      method,
      headers: { Accept: "application/json", ...headers },
    };
    if (this.token) init.headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }

    let attempt = 0;
    for (;;) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), this.timeoutMs);
      try {
        const res = await fetch(url, { ...init, signal: controller.signal });
        if (res.ok) {
          return res.status === 204 ? null : await res.json();
        }
        const text = await res.text();
        if (!RETRYABLE_STATUS.has(res.status) || attempt >= this.retries) {
          throw new ApiError(`${method} ${path} failed with ${res.status}`, {
            status: res.status,
            body: text,
          });
        }
      } catch (err) {
        if (err instanceof ApiError || attempt >= this.retries) throw err;
      } finally {
        clearTimeout(timer);
      }
      attempt += 1;
      const backoff = Math.min(8000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
      await sleep(backoff);
    }
  }

  get(path, query) {
    return this.request("GET", path, { query });
  }

  post(path, body) {
    return this.request("POST", path, { body });
  }

  put(path, body) {
    return this.request("PUT", path, { body });
  }

  delete(path) {
    return this.request("DELETE", path);
  }
}

export async function* paginate(client, path, pageSize = 50) {
  let cursor = null;
  do {
    const page = await client.get(path, { limit: pageSize, cursor });
    yield* page.items;
    cursor = page.next_cursor;
  } while (cursor);
}
