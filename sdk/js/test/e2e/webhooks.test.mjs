// Real deliveries from the webhooks service, verified by both SDK variants from the raw body
// and headers as they arrived at a node:http receiver; endpoint management end to end.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { IdempotencyKeyInUseError, NotFoundError, WebhookVerificationError, webhooks } from "clipmix";
import { verifySync } from "clipmix/node";
import { client, receiver, skip } from "./setup.mjs";

describe("webhooks, for real", { skip }, () => {
  const c = skip ? null : client("WEBHOOK_KEY");
  let hooks;
  let secret;

  before(async () => {
    hooks = await receiver();
  });
  after(() => hooks?.close());

  async function verifiedBoth(delivery, secrets) {
    const viaWebCrypto = await webhooks.verify(delivery.body, delivery.headers, secrets);
    const viaNode = verifySync(delivery.body, delivery.headers, secrets);
    assert.deepEqual(viaNode, viaWebCrypto);
    return viaWebCrypto;
  }

  test("set: the first answer carries the secret; get never does", async () => {
    await assert.rejects(c.webhookEndpoint.get(), (err) => err instanceof NotFoundError && err.code === "webhook_not_configured");
    const created = await c.webhookEndpoint.set({ url: hooks.url });
    assert.match(created.secret, /^whsec_/);
    secret = created.secret;
    const changed = await c.webhookEndpoint.set({ url: hooks.url, events: ["job.completed", "job.failed", "job.canceled"] });
    assert.equal(changed.secret, undefined);
    const endpoint = await c.webhookEndpoint.get();
    assert.equal(endpoint.url, hooks.url);
    assert.equal(endpoint.secret, undefined);
  });

  test("a job's delivery verifies from the raw body; a tampered copy does not", async () => {
    const job = await c.music.create({ prompt: "a song with a webhook" });
    const delivery = await hooks.waitFor((e) => e.job?.id === job.id);
    assert.match(delivery.headers["x-clipmix-signature"], /^sha256=[0-9a-f]{64}$/);
    const event = await verifiedBoth(delivery, secret);
    assert.equal(event.type, "job.completed");
    assert.equal(event.id, delivery.headers["webhook-id"]);
    assert.equal(event.job.status, "completed");
    assert.equal(event.test, true);
    // A Headers object (as fetch-style servers give) works as well as Node's record.
    const asHeaders = new Headers();
    for (let i = 0; i < delivery.rawHeaders.length; i += 2) asHeaders.append(delivery.rawHeaders[i], delivery.rawHeaders[i + 1]);
    assert.equal((await webhooks.verify(delivery.body.toString("utf8"), asHeaders, secret)).id, event.id);

    const tampered = Buffer.from(delivery.body.toString("utf8").replace('"completed"', '"failed"'));
    await assert.rejects(webhooks.verify(tampered, delivery.headers, secret), WebhookVerificationError);
    assert.throws(() => verifySync(tampered, delivery.headers, secret), WebhookVerificationError);
    await assert.rejects(
      webhooks.verify(delivery.body, delivery.headers, secret, { now: Date.now() + 10 * 60_000 }),
      (err) => err.code === "timestamp_too_old",
    );
  });

  test("test fire, the delivery log (paginated) and a redelivery with the same event id", async () => {
    const fired = await c.webhookEndpoint.test();
    assert.equal(fired.succeeded, true);
    const testDelivery = await hooks.waitFor((e) => e.id === fired.event_id);
    assert.equal((await verifiedBoth(testDelivery, secret)).type, "webhook.test");

    const log = await c.webhookEndpoint.deliveries({ limit: 1 }).toArray();
    assert.ok(log.length >= 2, "the job's delivery and the test fire, one page each");
    assert.ok(log.every((d) => d.object === "webhook_delivery"));
    const page = await c.webhookEndpoint.deliveriesPage({ limit: 1 });
    assert.equal(page.has_more, true);

    const before = hooks.received.length;
    const original = log.find((d) => d.event_id === fired.event_id);
    const again = await c.webhookEndpoint.redeliver(original.id);
    assert.equal(again.event_id, fired.event_id);
    const redelivered = await hooks.waitFor((e) => e.id === fired.event_id, { from: before });
    assert.equal((await verifiedBoth(redelivered, secret)).id, fired.event_id);
    assert.notEqual(redelivered.headers["webhook-timestamp"], undefined);
  });

  test("rotation: deliveries carry both signatures; old and new secret each verify", async () => {
    const rotated = await c.webhookEndpoint.rotateSecret();
    assert.match(rotated.secret, /^whsec_/);
    assert.notEqual(rotated.secret, secret);
    assert.ok(rotated.previous_secret_expires_at);
    const fired = await c.webhookEndpoint.test();
    const delivery = await hooks.waitFor((e) => e.id === fired.event_id);
    assert.equal(delivery.headers["x-clipmix-signature"].split(",").length, 2);
    assert.equal(delivery.headers["webhook-signature"].split(" ").length, 2);
    await verifiedBoth(delivery, rotated.secret);
    await verifiedBoth(delivery, secret);
    secret = rotated.secret;
  });

  test("409 idempotency_key_in_use while a keyed test fire is in flight; retries get the one answer", async () => {
    const slow = await receiver({ delayMs: 700 });
    try {
      await c.webhookEndpoint.set({ url: slow.url });
      const key = `fire-${Date.now()}`;
      const noRetry = await Promise.allSettled([
        c.webhookEndpoint.test({ idempotencyKey: key, maxRetries: 0 }),
        new Promise((r) => setTimeout(r, 150)).then(() => c.webhookEndpoint.test({ idempotencyKey: key, maxRetries: 0 })),
      ]);
      // Whichever reached the gateway second found the key's lease taken.
      assert.deepEqual(noRetry.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
      const err = noRetry.find((r) => r.status === "rejected").reason;
      assert.ok(err instanceof IdempotencyKeyInUseError, `${err}`);
      assert.equal(err.status, 409);
      assert.match(err.requestId, /^req_/);

      const key2 = `fire-retried-${Date.now()}`;
      const [a, b] = await Promise.all([
        c.webhookEndpoint.test({ idempotencyKey: key2 }),
        new Promise((r) => setTimeout(r, 150)).then(() => c.webhookEndpoint.test({ idempotencyKey: key2 })),
      ]);
      assert.equal(b.event_id, a.event_id, "the retried call got the kept answer: one fire");
      assert.equal(slow.received.filter((d) => JSON.parse(d.body).id === a.event_id).length, 1);
    } finally {
      await slow.close();
    }
  });

  test("delete: the endpoint is gone", async () => {
    const deleted = await c.webhookEndpoint.delete();
    assert.equal(deleted.deleted, true);
    await assert.rejects(c.webhookEndpoint.get(), NotFoundError);
  });
});
