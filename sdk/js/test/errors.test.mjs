// API answers → error classes, with every field a caller reads.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import * as sdk from "clipmix";
import { apiError, json, scriptedServer } from "./helpers.mjs";

const CASES = [
  [400, "invalid_request_error", "parameter_invalid", "InvalidRequestError"],
  [401, "authentication_error", "invalid_api_key", "AuthenticationError"],
  [402, "invalid_request_error", "insufficient_credits", "InsufficientCreditsError"],
  [403, "permission_error", "live_mode_not_enabled", "PermissionDeniedError"],
  [404, "invalid_request_error", "resource_missing", "NotFoundError"],
  [409, "idempotency_error", "idempotency_key_in_use", "IdempotencyKeyInUseError"],
  [409, "invalid_request_error", "job_not_cancelable", "ConflictError"],
  [413, "invalid_request_error", "body_too_large", "InvalidRequestError"],
  [415, "invalid_request_error", "unsupported_media_type", "InvalidRequestError"],
  [422, "idempotency_error", "idempotency_key_reuse", "IdempotencyKeyReuseError"],
  [422, "invalid_request_error", "price_unavailable", "InvalidRequestError"],
  [429, "rate_limit_error", "rate_limited", "RateLimitedError"],
  [500, "api_error", "internal_error", "APIServerError"],
  [503, "api_error", "service_unavailable", "APIServerError"],
  [418, "api_error", "teapot", "ClipMixError"],
];

let server;
after(() => server?.close());

test("each status and code maps to its class, carrying type, code, param, status, ids", async () => {
  let current;
  server = await scriptedServer((_, res) => {
    const [status, type, code] = current;
    const extra = code === "insufficient_credits" ? { needed: 300, available: 100, param: "duration_seconds" } : {};
    apiError(res, status, type, code, extra, { "Retry-After": "7" });
  });
  const client = new sdk.ClipMix({ apiKey: "sk_test_unit", baseUrl: server.url, maxRetries: 0 });
  for (const c of CASES) {
    current = c;
    const [status, type, code, name] = c;
    const err = await client.balance().then(
      () => assert.fail(`${status} ${code} resolved`),
      (e) => e,
    );
    assert.equal(err.constructor, sdk[name], `${status} ${code} → ${err.constructor.name}`);
    assert.ok(err instanceof sdk.ClipMixError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, name);
    assert.equal(err.status, status);
    assert.equal(err.type, type);
    assert.equal(err.code, code);
    assert.equal(err.message, `${code} happened`);
    assert.equal(err.requestId, `req_${status}_${code}`, "the Request-Id header wins");
    if (name === "InsufficientCreditsError") {
      assert.equal(err.needed, 300);
      assert.equal(err.available, 100);
      assert.equal(err.param, "duration_seconds");
    }
    if (name === "RateLimitedError") assert.equal(err.retryAfter, 7);
  }
  assert.ok(new sdk.IdempotencyKeyInUseError({ message: "x" }) instanceof sdk.ConflictError);
  assert.ok(new sdk.APITimeoutError({ message: "x" }) instanceof sdk.APIConnectionError);
});

test("without a Request-Id header the body's request_id is used; a non-JSON error still maps", async () => {
  const s = await scriptedServer((req, res) => {
    if (req.n === 1) json(res, 404, { error: { type: "invalid_request_error", code: "resource_missing", message: "No such job", request_id: "req_in_body" } });
    else {
      res.writeHead(502, { "Content-Type": "text/html" });
      res.end("<html>bad gateway</html>");
    }
  });
  try {
    const client = new sdk.ClipMix({ apiKey: "sk_test_unit", baseUrl: s.url, maxRetries: 0 });
    await assert.rejects(client.jobs.get("job_x"), (e) => e instanceof sdk.NotFoundError && e.requestId === "req_in_body");
    await assert.rejects(client.jobs.get("job_x"), (e) => e instanceof sdk.APIServerError && e.status === 502 && e.code === undefined);
  } finally {
    await s.close();
  }
});

test("a 2xx answer that is not JSON is an error, not undefined", async () => {
  const s = await scriptedServer((_, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end("<html>captive portal</html>");
  });
  try {
    const client = new sdk.ClipMix({ apiKey: "sk_test_unit", baseUrl: s.url, maxRetries: 0 });
    await assert.rejects(client.balance(), (e) => e instanceof sdk.ClipMixError && e.code === "invalid_response");
  } finally {
    await s.close();
  }
});
