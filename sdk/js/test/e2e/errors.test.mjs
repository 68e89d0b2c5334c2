// Each error class, provoked for real against the running suite.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, test } from "node:test";

import {
  APIConnectionError,
  APITimeoutError,
  AuthenticationError,
  ClipMix,
  IdempotencyKeyReuseError,
  InsufficientCreditsError,
  InvalidRequestError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitedError,
} from "clipmix";
import { BASE_URL, client, skip } from "./setup.mjs";

/** Asserts the fields every API error carries. */
function apiError(cls, status, code) {
  return (err) => {
    assert.ok(err instanceof cls, `${err.name}: ${err.message}`);
    assert.equal(err.status, status);
    assert.equal(err.code, code);
    assert.match(err.requestId ?? "", /^req_/, "Request-Id of the answer");
    assert.ok(err.message.length > 0);
    return true;
  };
}

describe("errors from the real API", { skip, concurrency: true }, () => {
  test("InvalidRequestError names the field", async () => {
    await assert.rejects(
      client("TEST_KEY").music.create({ prompt: "too short", durationSeconds: 1 }),
      (err) => apiError(InvalidRequestError, 400, "parameter_invalid")(err) && err.param === "duration_seconds",
    );
  });

  test("AuthenticationError for an unknown key", async () => {
    const c = new ClipMix({ apiKey: `sk_test_${"0".repeat(32)}`, baseUrl: BASE_URL });
    await assert.rejects(c.balance(), (err) => apiError(AuthenticationError, 401, "invalid_api_key")(err) && err.type === "authentication_error");
  });

  test("NotFoundError: an unknown id, and another account's job", async () => {
    await assert.rejects(client("TEST_KEY").jobs.get("job_01jd000000000000000000000a"), apiError(NotFoundError, 404, "resource_missing"));
    const theirs = await client("OTHER_KEY").music.create({ prompt: "not yours" });
    await assert.rejects(client("TEST_KEY").jobs.get(theirs.id), apiError(NotFoundError, 404, "resource_missing"));
  });

  test("InsufficientCreditsError with needed and available", async () => {
    const poor = client("POOR_LIVE_KEY");
    const { available } = await poor.balance();
    await assert.rejects(poor.music.create({ prompt: "a long song", durationSeconds: 300 }), (err) => {
      apiError(InsufficientCreditsError, 402, "insufficient_credits")(err);
      assert.equal(err.needed, 300);
      assert.equal(err.available, available);
      return true;
    });
  });

  test("PermissionDeniedError: a live key before the account's first purchase", async () => {
    await assert.rejects(
      client("UNFUNDED_LIVE_KEY").music.create({ prompt: "no credits yet", durationSeconds: 5 }),
      apiError(PermissionDeniedError, 403, "live_mode_not_enabled"),
    );
  });

  test("IdempotencyKeyReuseError: one key, two different requests; the same request replays", async () => {
    const c = client("TEST_KEY");
    const key = `reuse-${Date.now()}`;
    const first = await c.music.create({ prompt: "first", idempotencyKey: key });
    const again = await c.music.create({ prompt: "first", idempotencyKey: key });
    assert.equal(again.id, first.id);
    await assert.rejects(
      c.music.create({ prompt: "second", idempotencyKey: key }),
      apiError(IdempotencyKeyReuseError, 422, "idempotency_key_reuse"),
    );
  });

  test("RateLimitedError with retryAfter; with retries on, the SDK waits and succeeds", async () => {
    const limited = client("LIMITED_KEY", { maxRetries: 0 });
    const results = await Promise.allSettled([limited.pricing(), limited.pricing(), limited.pricing()]);
    const refused = results.filter((r) => r.status === "rejected").map((r) => r.reason);
    assert.ok(refused.length >= 1, "a 1/s key with burst 1 refuses three calls at once");
    for (const err of refused) {
      apiError(RateLimitedError, 429, "rate_limited")(err);
      assert.ok(err.retryAfter >= 1);
    }
    const retries = [];
    const patient = client("LIMITED_KEY", { maxRetries: 3, onRetry: (info) => retries.push(info) });
    const answers = await Promise.all([patient.pricing(), patient.pricing()]);
    assert.equal(answers.length, 2);
    assert.ok(retries.length >= 1, "the second call was refused once, then retried");
    assert.ok(retries.every((r) => r.error instanceof RateLimitedError && r.delayMs >= 1000));
  });

  test("APIConnectionError when nothing listens", async () => {
    const port = await new Promise((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address();
        probe.close(() => resolve(port));
      });
    });
    const c = new ClipMix({ apiKey: "sk_test_x", baseUrl: `http://127.0.0.1:${port}`, maxRetries: 1 });
    await assert.rejects(c.balance(), (err) => err instanceof APIConnectionError && err.status === undefined);
  });

  test("APITimeoutError when the answer takes longer than timeoutMs", async () => {
    const c = client("TEST_KEY");
    await assert.rejects(
      c.music.create(
        { prompt: "slow", sandboxScenario: { delay: 3 }, wait: 3 },
        { timeoutMs: 400, maxRetries: 0 },
      ),
      (err) => err instanceof APITimeoutError && err.code === "timeout",
    );
  });
});
