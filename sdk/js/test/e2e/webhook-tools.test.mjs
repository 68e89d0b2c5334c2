// Issue 18 through the TypeScript SDK against the running suite: pause and resume (what queued
// meanwhile is delivered once), held deliveries set aside and recovered with their original
// event ids, a delivery's exact request, the signature doctor on a real delivery, and a
// restricted read-only key refused with PermissionDeniedError naming the permission.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ConflictError, NotFoundError, PermissionDeniedError, isEventType, webhooks } from "clipmix";
import { client, eventually, receiver, skip } from "./setup.mjs";

describe("webhook tools, for real", { skip }, () => {
  const c = skip ? null : client("TOOLS_KEY");
  let hooks;
  let secret;

  before(async () => {
    hooks = await receiver();
    secret = (await c.webhookEndpoint.set({ url: hooks.url })).secret;
  });
  after(() => hooks?.close());

  const bodies = (from = 0) => hooks.received.slice(from).map((d) => JSON.parse(d.body.toString("utf8")));

  async function heldCount(count) {
    return eventually(async () => (await c.webhookEndpoint.get()).held_events === count, 15_000, `${count} held`);
  }

  async function eventOf(jobId) {
    return eventually(async () => {
      const page = await c.events.listPage({ limit: 50 });
      return page.data.find((e) => e.job?.id === jobId);
    }, 15_000, "the job's event");
  }

  test("pause holds events; resume delivers them once, in order", async () => {
    const endpoint = await c.webhookEndpoint.get();
    assert.deepEqual([endpoint.status, endpoint.held_events, endpoint.disabled_reason], ["enabled", 0, null]);
    const paused = await c.webhookEndpoint.pause();
    assert.equal(paused.status, "paused");
    const from = hooks.received.length;
    const jobs = [];
    for (let n = 0; n < 2; n++) {
      jobs.push((await c.music.create({ prompt: `held ${n}` })).id);
      await heldCount(n + 1);
    }
    assert.equal(hooks.received.length, from, "nothing delivered while paused");
    const resumed = await c.webhookEndpoint.resume();
    assert.deepEqual([resumed.status, resumed.released], ["enabled", 2]);
    await eventually(() => hooks.received.length >= from + 2, 15_000, "the held deliveries");
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(bodies(from).map((e) => e.job.id), jobs);
    for (const delivery of hooks.received.slice(from)) await webhooks.verify(delivery.body, delivery.headers, secret);
  });

  test("held deliveries set aside on resume are recovered with their original event ids", async () => {
    const since = new Date(Date.now() - 1000);
    await c.webhookEndpoint.pause();
    const job = await c.music.create({ prompt: "set aside" });
    await heldCount(1);
    const from = hooks.received.length;
    const resumed = await c.webhookEndpoint.resume({ deliverHeld: false });
    assert.deepEqual([resumed.status, resumed.released], ["enabled", 0]);
    const original = await eventOf(job.id);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(hooks.received.length, from, "set aside, not sent");

    const key = `recover-${Date.now()}`;
    const recovery = await c.webhookEndpoint.recover({ since }, { idempotencyKey: key });
    assert.equal(recovery.object, "webhook_recovery");
    assert.match(recovery.id, /^rcv_/);
    assert.equal(recovery.queued, 1);
    const again = await c.webhookEndpoint.recover({ since }, { idempotencyKey: key });
    assert.equal(again.id, recovery.id, "the same key answers the same recovery");
    await eventually(() => hooks.received.length > from, 15_000, "the recovered delivery");
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(bodies(from).map((e) => e.id), [original.id]);
    const event = await webhooks.verify(hooks.received[from].body, hooks.received[from].headers, secret);
    assert.ok(isEventType(event, "job.completed"));
    assert.equal(event.job.id, job.id);
  });

  test("a delivery's exact request, and the doctor on it", async () => {
    const job = await c.music.create({ prompt: "for the doctor" });
    const delivery = await eventually(
      () => hooks.received.find((d) => JSON.parse(d.body.toString("utf8")).job?.id === job.id),
      15_000,
      "the delivery",
    );
    const eventId = delivery.headers["webhook-id"];
    const row = await eventually(async () => {
      const log = await c.webhookEndpoint.deliveriesPage({ limit: 20 });
      return log.data.find((d) => d.event_id === eventId);
    }, 15_000, "the log row");
    const detail = await c.webhookEndpoint.getDelivery(row.id);
    assert.equal(detail.request_body, delivery.body.toString("utf8"), "the exact bytes signed");
    assert.equal(detail.request_headers["webhook-id"], eventId);

    const fine = await c.webhookEndpoint.diagnose(row.id, { body: delivery.body, headers: delivery.headers });
    assert.deepEqual([fine.verified, fine.cause], [true, null]);
    const pretty = JSON.stringify(JSON.parse(delivery.body.toString("utf8")), null, 2);
    const broken = await c.webhookEndpoint.diagnose(row.id, {
      body: pretty,
      headers: delivery.headers,
      receivedAt: new Date(),
    });
    assert.deepEqual([broken.verified, broken.cause], [false, "body_reencoded"]);
    assert.ok(broken.first_difference.offset > 0);
    assert.ok(broken.checks.some((check) => check.name === "body" && !check.ok));
    assert.ok(broken.message.length > 10);

    const stranger = client("OTHER_KEY");
    await assert.rejects(stranger.webhookEndpoint.getDelivery(row.id), NotFoundError);
  });

  test("a read-only restricted key reads, and each write is refused naming the permission", async () => {
    const restricted = client("RESTRICTED_KEY");
    assert.equal((await restricted.jobs.listPage()).object, "list");
    assert.equal((await restricted.balance()).object, "balance");
    for (const [permission, call] of [
      ["jobs:write", () => restricted.music.create({ prompt: "not allowed" })],
      ["webhook:write", () => restricted.webhookEndpoint.pause()],
    ]) {
      const err = await call().then(() => assert.fail("not refused"), (e) => e);
      assert.ok(err instanceof PermissionDeniedError, `${err}`);
      assert.deepEqual([err.status, err.code, err.permission], [403, "permission_denied", permission]);
      assert.ok(err.message.includes(permission), err.message);
      assert.match(err.requestId, /^req_/);
    }
    // A recovery while paused is refused, by state (not by permission) for a full key.
    await c.webhookEndpoint.pause();
    try {
      await assert.rejects(c.webhookEndpoint.recover({ since: new Date(Date.now() - 60_000) }), (err) => {
        assert.ok(err instanceof ConflictError, `${err}`);
        assert.equal(err.code, "endpoint_disabled");
        return true;
      });
    } finally {
      await c.webhookEndpoint.resume();
    }
  });
});
