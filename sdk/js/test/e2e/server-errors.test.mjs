// 5xx for real: tests/e2e/test_sdk_js.py stops the billing service, runs this file with
// CLIPMIX_E2E_BILLING_DOWN=1, then starts billing again.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { APIServerError } from "clipmix";
import { client, skip } from "./setup.mjs";

const down = process.env.CLIPMIX_E2E_BILLING_DOWN === "1";

describe("billing is down", { skip: skip || (!down && "needs CLIPMIX_E2E_BILLING_DOWN=1") }, () => {
  test("APIServerError after retries that honoured Retry-After", async () => {
    const retries = [];
    const c = client("LIVE_KEY", { maxRetries: 2, onRetry: (info) => retries.push(info) });
    await assert.rejects(c.balance(), (err) => {
      assert.ok(err instanceof APIServerError, `${err}`);
      assert.equal(err.status, 503);
      assert.equal(err.code, "service_unavailable");
      assert.match(err.requestId, /^req_/);
      return true;
    });
    assert.equal(retries.length, 2, "retried maxRetries times, then thrown");
    assert.ok(retries.every((r) => r.delayMs >= 1000), "Retry-After: 1 honoured");
  });

  test("a live create answers 503 billing_unavailable and is retried with one key", async () => {
    const keys = new Set();
    const c = client("LIVE_KEY", { maxRetries: 1, onRetry: (info) => keys.add(info.idempotencyKey) });
    await assert.rejects(c.music.create({ prompt: "no billing", durationSeconds: 5 }), (err) => {
      assert.ok(err instanceof APIServerError, `${err}`);
      assert.equal(err.code, "billing_unavailable");
      return true;
    });
    assert.equal(keys.size, 1);
  });
});
