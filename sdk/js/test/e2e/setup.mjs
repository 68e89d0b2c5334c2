// Integration tests run against the real suite when CLIPMIX_E2E_BASE_URL is set; the keys
// come from tests/e2e/test_sdk_js.py (CLIPMIX_E2E_<NAME>).
import { createServer } from "node:http";

import { ClipMix } from "clipmix";

export const BASE_URL = process.env.CLIPMIX_E2E_BASE_URL;
/** `describe(..., { skip })`: the reason, or false when the suite is there. */
export const skip = BASE_URL
  ? false
  : "CLIPMIX_E2E_BASE_URL is not set (tests/e2e/test_sdk_js.py runs these against the suite)";

export function key(name) {
  const value = process.env[`CLIPMIX_E2E_${name}`];
  if (!value) throw new Error(`CLIPMIX_E2E_${name} is not set`);
  return value;
}

export function client(name, options = {}) {
  return new ClipMix({ apiKey: key(name), baseUrl: BASE_URL, timeoutMs: 15_000, ...options });
}

/** Resolves once `check()` answers something truthy; polls every 50 ms up to `timeoutMs`. */
export async function eventually(check, timeoutMs = 15_000, what = "condition") {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A webhook receiver on 127.0.0.1 that keeps each request's raw body and headers.
 * `delayMs` holds each answer that long (to keep a test fire in flight).
 */
export async function receiver({ delayMs = 0 } = {}) {
  const received = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const delivery = { headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) };
    received.push(delivery);
    if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end("ok");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hooks`,
    received,
    /** The first delivery (from index `from` on) whose parsed body satisfies `match`. */
    async waitFor(match, { from = 0, timeoutMs = 15_000 } = {}) {
      return eventually(
        () => received.slice(from).find((d) => match(JSON.parse(d.body.toString("utf8")))),
        timeoutMs,
        "a webhook delivery",
      );
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}
