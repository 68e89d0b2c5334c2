// Jobs through the real gateway: the four services in sandbox mode, waiting, cancel,
// pagination, and a live job run by the provider simulator and paid from the ledger.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ConflictError, NotFoundError, WaitTimeoutError } from "clipmix";
import { client, eventually, skip } from "./setup.mjs";

describe("sandbox jobs", { skip, concurrency: true }, () => {
  const c = skip ? null : client("TEST_KEY");

  test("each of the four services: create, then wait until completed", async () => {
    const delayed = { sandboxScenario: { delay: 1 } };
    const created = await Promise.all([
      c.music.create({ prompt: "a lullaby for a rainy day", durationSeconds: 30, vocals: "female", ...delayed }),
      c.translations.create({
        videoUrl: "https://videos.example/talk.mp4",
        targetLanguages: ["es", "de"],
        tier: "standard",
        ...delayed,
      }),
      c.familyVideos.create({ photoUrls: ["https://photos.example/1.jpg"], mode: "moment", ...delayed }),
      c.avatars.create({
        kind: "talking_head",
        tier: "balanced",
        faceImageUrl: "https://photos.example/face.jpg",
        durationSeconds: 3,
        script: "Hello from the SDK",
        ...delayed,
      }),
    ]);
    const services = [c.music, c.translations, c.familyVideos, c.avatars];
    assert.deepEqual(
      created.map((j) => j.service),
      ["music", "translations", "family_videos", "avatars"],
    );
    for (const job of created) {
      assert.equal(job.status, "processing", "a delay scenario answers the job still running");
      assert.equal(job.test, true);
      assert.equal(job.output, null);
    }
    assert.equal(created[0].input.duration_seconds, 30, "camelCase in, snake_case on the wire");
    const done = await Promise.all(
      created.map((job, i) => services[i].wait(job.id, { timeoutMs: 20_000, pollIntervalMs: 200 })),
    );
    for (const job of done) {
      assert.equal(job.status, "completed", JSON.stringify(job));
      assert.ok(job.completed_at);
      assert.equal(job.cost_credits, 0);
    }
    assert.match(done[0].output.artifacts[0].url, /music\.wav$/);
    assert.deepEqual(done[1].output.dubs.map((d) => d.language), ["es", "de"]);
    assert.equal(done[2].output.artifacts[0].content_type, "video/mp4");
    assert.ok(done[3].output.artifacts[0].expires_at);
    // The same job through the any-service route; another service's route answers 404.
    assert.equal((await c.jobs.get(created[1].id)).id, created[1].id);
    await assert.rejects(c.avatars.get(created[0].id), NotFoundError);
  });

  test("create with wait: the server holds the answer until the job is final", async () => {
    const job = await c.music.create({ prompt: "held", sandboxScenario: { delay: 1 }, wait: 10 });
    assert.equal(job.status, "completed");
  });

  test("a failing scenario: wait answers the failed job with its error", async () => {
    const job = await c.music.create({ prompt: "doomed", sandboxScenario: "delay=1, fail=provider_timeout" });
    const done = await c.jobs.wait(job.id, { pollIntervalMs: 200, timeoutMs: 20_000 });
    assert.equal(done.status, "failed");
    assert.equal(done.error.code, "provider_timeout");
  });

  test("cancel a running job; a final job is not cancelable; wait gives up on time", async () => {
    const job = await c.avatars.create({
      kind: "faceswap",
      tier: "economy",
      faceImageUrl: "https://photos.example/face.jpg",
      targetVideoUrl: "https://videos.example/clip.mp4",
      durationSeconds: 4,
      sandboxScenario: { delay: 30 },
    });
    await assert.rejects(c.avatars.wait(job.id, { timeoutMs: 300, pollIntervalMs: 100 }), (err) => {
      assert.ok(err instanceof WaitTimeoutError);
      assert.equal(err.job.status, "processing");
      return true;
    });
    const canceled = await c.avatars.cancel(job.id);
    assert.equal(canceled.status, "canceled");
    assert.equal((await c.jobs.wait(job.id)).status, "canceled");
    await assert.rejects(c.jobs.cancel(job.id), (err) => {
      assert.ok(err instanceof ConflictError);
      assert.equal(err.status, 409);
      assert.equal(err.code, "job_not_cancelable");
      return true;
    });
  });

  test("list() pages through more than one page, newest first", async () => {
    const mine = [];
    for (let i = 0; i < 5; i++) mine.push((await c.music.create({ prompt: `page ${i}` })).id);
    const since = (await c.jobs.get(mine[0])).created_at;
    const first = await c.jobs.listPage({ limit: 2, service: "music", createdGte: since });
    assert.equal(first.data.length, 2);
    assert.equal(first.has_more, true);

    const seen = [];
    let pages = 0;
    for await (const page of c.jobs.list({ limit: 2, service: "music", createdGte: since }).pages()) {
      pages += 1;
      seen.push(...page.data.map((j) => j.id));
    }
    assert.ok(pages >= 3, `${pages} pages`);
    const ours = seen.filter((id) => mine.includes(id));
    assert.deepEqual(ours, [...mine].reverse(), "each job once, newest first");
    assert.equal(new Set(seen).size, seen.length, "no job twice across pages");

    const iterated = [];
    for await (const job of c.jobs.list({ limit: 2, service: "music", createdGte: since })) iterated.push(job.id);
    assert.deepEqual(iterated, seen);
  });
});

describe("live jobs", { skip, concurrency: true }, () => {
  const c = skip ? null : client("LIVE_KEY");

  test("a live music job runs on the provider simulator and is paid from the ledger", async () => {
    const before = await c.balance();
    assert.equal(before.live_enabled, true);
    const job = await c.music.create({ prompt: "a live song", durationSeconds: 5, idempotencyKey: `live-${Date.now()}` });
    assert.equal(job.test, false);
    assert.equal(job.status, "queued");
    assert.equal(job.cost_credits, 5, "1 credit per second");
    const done = await c.music.wait(job.id, { timeoutMs: 45_000, pollIntervalMs: 250 });
    assert.equal(done.status, "completed", JSON.stringify(done.error));
    assert.ok(done.output.artifacts.length >= 1);
    const capture = await eventually(
      async () => (await c.ledger.list({ limit: 10 }).toArray(50)).find((e) => e.job_id === job.id && e.type === "capture"),
      15_000,
      "the capture",
    );
    assert.equal(capture.amount, 5);
    const entries = await c.ledger.list({ limit: 1 }).toArray();
    assert.ok(entries.some((e) => e.type === "purchase"), "paginates down to the purchase");
    assert.ok(entries.filter((e) => e.job_id === job.id && e.type === "reservation").length === 1);
    const pricing = await c.pricing();
    assert.equal(pricing.object, "price_book");
    assert.ok(pricing.prices.some((p) => p.service === "music" && p.credits === 1));
  });
});
