// The webhook tools of issue 18 (pause, resume, recover, a delivery's exact request, the
// signature doctor, the event catalog) and the restricted keys' refusal, against a scripted
// server: what each call sends and what it answers.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";

import { ClipMix, PermissionDeniedError } from "clipmix";
import { apiError, json, scriptedServer } from "./helpers.mjs";

const KEY = "rk_test_unit"; // a restricted key: sent like any other

const ENDPOINT = {
  object: "webhook_endpoint",
  url: "https://hooks.example.com/clipmix",
  events: ["job.completed"],
  api_key_id: "key_1",
  created_at: "2026-12-06T20:00:00.000Z",
  updated_at: "2026-12-06T20:00:00.000Z",
  previous_secret_expires_at: null,
  status: "enabled",
  disabled_reason: null,
  disabled_at: null,
  failing_since: null,
  held_events: 0,
};

const DIAGNOSIS = {
  object: "webhook_diagnosis",
  delivery_id: "whd_1",
  verified: false,
  cause: "body_reencoded",
  message: "The body was re-serialized before verifying.",
  checks: [{ name: "body", ok: false, detail: "differs at byte 8" }],
  first_difference: { offset: 8, expected: '":"', received: '": "' },
};

describe("webhook tools", () => {
  let server;
  let answers;
  let client;

  before(async () => {
    server = await scriptedServer((req, res) => {
      const next = answers.shift();
      if (next === undefined) return json(res, 500, { error: { code: "unscripted" } });
      next(res, req);
    });
    client = new ClipMix({ apiKey: KEY, baseUrl: server.url, maxRetries: 0 });
  });
  after(() => server.close());
  beforeEach(() => {
    server.requests.length = 0;
    answers = [];
  });

  const reply = (status, body) => (res) => json(res, status, body);

  test("pause and resume: the paths, the body and the endpoint's status", async () => {
    answers = [
      reply(200, { ...ENDPOINT, status: "paused", held_events: 2 }),
      reply(200, { ...ENDPOINT, released: 2 }),
      reply(200, { ...ENDPOINT, released: 0 }),
    ];
    const paused = await client.webhookEndpoint.pause();
    const resumed = await client.webhookEndpoint.resume();
    const dropped = await client.webhookEndpoint.resume({ deliverHeld: false }, { idempotencyKey: "r-1" });
    assert.equal(paused.status, "paused");
    assert.equal(paused.held_events, 2);
    assert.equal(resumed.released, 2);
    assert.equal(dropped.released, 0);
    const [p, r, d] = server.requests;
    assert.deepEqual([p.method, p.url, p.body], ["POST", "/api/v1/webhook/pause", ""]);
    assert.equal(p.headers.authorization, `Bearer ${KEY}`);
    assert.ok(p.headers["idempotency-key"], "every POST carries an Idempotency-Key");
    assert.deepEqual([r.url, JSON.parse(r.body)], ["/api/v1/webhook/resume", { deliver_held: true }]);
    assert.deepEqual(JSON.parse(d.body), { deliver_held: false });
    assert.equal(d.headers["idempotency-key"], "r-1");
  });

  test("recover: strings as given, Dates and epoch milliseconds as RFC 3339", async () => {
    const recovery = {
      object: "webhook_recovery",
      id: "rcv_1",
      since: "2026-12-06T20:00:00Z",
      until: null,
      status: "queued",
      queued: 4,
    };
    answers = [reply(202, recovery), reply(202, recovery)];
    const got = await client.webhookEndpoint.recover({ since: "2026-12-06T20:00:00Z" });
    await client.webhookEndpoint.recover({
      since: new Date(Date.UTC(2026, 11, 6, 20)),
      until: Date.UTC(2026, 11, 6, 21),
    });
    assert.deepEqual([got.id, got.status, got.queued], ["rcv_1", "queued", 4]);
    const [a, b] = server.requests;
    assert.equal(a.url, "/api/v1/webhook/recover");
    assert.deepEqual(JSON.parse(a.body), { since: "2026-12-06T20:00:00Z" });
    assert.deepEqual(JSON.parse(b.body), {
      since: "2026-12-06T20:00:00.000Z",
      until: "2026-12-06T21:00:00.000Z",
    });
    await assert.rejects(client.webhookEndpoint.recover({ since: " " }), /since/);
    await assert.rejects(client.webhookEndpoint.recover({ since: new Date("nope") }), /since/);
    assert.equal(server.requests.length, 2, "nothing sent for a bad time");
  });

  test("getDelivery: the id as one path segment; the exact request read", async () => {
    answers = [
      reply(200, {
        object: "webhook_delivery",
        id: "whd_1/x",
        event_id: "evt_1",
        request_headers: { "webhook-id": "evt_1" },
        request_body: '{"id":"evt_1"}',
      }),
    ];
    const delivery = await client.webhookEndpoint.getDelivery("whd_1/x");
    assert.equal(server.requests[0].url, "/api/v1/webhook/deliveries/whd_1%2Fx");
    assert.equal(delivery.request_body, '{"id":"evt_1"}');
    assert.deepEqual(delivery.request_headers, { "webhook-id": "evt_1" });
  });

  test("diagnose: the body as received, headers lower-cased, Unix seconds kept", async () => {
    answers = [reply(200, DIAGNOSIS), reply(200, { ...DIAGNOSIS, verified: true, cause: null })];
    const received = new TextEncoder().encode('{"id": "evt_1"}');
    const diagnosis = await client.webhookEndpoint.diagnose("whd_1", {
      body: received,
      headers: { "Webhook-Id": "evt_1", "webhook-signature": ["v1,a", "v1,b"], skipped: undefined },
      signature: "v1,c",
      receivedAt: 1765054800,
    });
    const asHeaders = new Headers({ "X-ClipMix-Signature": "sha256=00" });
    const second = await client.webhookEndpoint.diagnose("whd_1", {
      body: '{"a":1}',
      headers: asHeaders,
      receivedAt: new Date(Date.UTC(2026, 11, 6)),
    });
    assert.equal(diagnosis.cause, "body_reencoded");
    assert.equal(diagnosis.first_difference.offset, 8);
    assert.equal(second.verified, true);
    const [a, b] = server.requests;
    assert.equal(a.url, "/api/v1/webhook/deliveries/whd_1/diagnose");
    assert.deepEqual(JSON.parse(a.body), {
      body: '{"id": "evt_1"}',
      headers: { "webhook-id": "evt_1", "webhook-signature": "v1,a, v1,b" },
      signature: "v1,c",
      received_at: 1765054800,
    });
    assert.deepEqual(JSON.parse(b.body), {
      body: '{"a":1}',
      headers: { "x-clipmix-signature": "sha256=00" },
      received_at: "2026-12-06T00:00:00.000Z",
    });
    await assert.rejects(client.webhookEndpoint.diagnose("whd_1", { headers: {} }), /body/);
  });

  test("eventTypes reads the catalog", async () => {
    const entry = { object: "event_type", type: "job.completed", description: "Done.", schema: { type: "object" } };
    answers = [reply(200, { object: "list", data: [entry] })];
    const catalog = await client.webhookEndpoint.eventTypes();
    assert.equal(server.requests[0].url, "/api/v1/event-types");
    assert.deepEqual(catalog.data, [entry]);
  });

  test("403 permission_denied: PermissionDeniedError naming the permission, not retried", async () => {
    answers = [
      (res) => apiError(res, 403, "permission_error", "permission_denied", { permission: "jobs:write" }),
      (res) => apiError(res, 403, "permission_error", "live_mode_not_enabled"),
    ];
    const retrying = new ClipMix({ apiKey: KEY, baseUrl: server.url, maxRetries: 3 });
    const denied = await retrying.music.create({ prompt: "x" }).catch((e) => e);
    assert.ok(denied instanceof PermissionDeniedError, `${denied}`);
    assert.equal(denied.permission, "jobs:write");
    assert.equal(denied.status, 403);
    const other = await retrying.music.create({ prompt: "x" }).catch((e) => e);
    assert.ok(other instanceof PermissionDeniedError);
    assert.equal(other.permission, undefined);
    assert.equal(server.requests.length, 2);
  });
});

test("isEventType narrows an event to its typed shape; EVENT_TYPES lists each type once", async () => {
  const { EVENT_TYPES, isEventType } = await import("clipmix");
  const event = {
    id: "evt_1",
    object: "event",
    type: "endpoint.disabled",
    created: "2026-12-06T20:00:00Z",
    test: true,
    api_key_id: "key_1",
    job: null,
    data: { url: "https://hooks.example.com/x", reason: "gone", disabled_at: "2026-12-06T20:00:00Z", failing_since: null },
  };
  assert.equal(isEventType(event, "endpoint.disabled"), true);
  assert.equal(isEventType(event, "keys.expiring"), false);
  assert.deepEqual([...new Set(EVENT_TYPES)].sort(), [...EVENT_TYPES].sort());
  assert.ok(EVENT_TYPES.includes("keys.expiring") && EVENT_TYPES.includes("job.completed"));
});
