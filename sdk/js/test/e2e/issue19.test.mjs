// Issue 19's calls through the real gateway: a quote equal to the job's reservation and
// ?dry_run=true creating nothing, a job's live progress stream and wait() over it, the
// low-balance standing and threshold, the status summary and subscriptions.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError, isFinalStreamEvent } from "clipmix";
import { client, skip } from "./setup.mjs";

describe("quotes", { skip, concurrency: true }, () => {
  const c = skip ? null : client("ISSUE19_LIVE_KEY");

  test("a quote is what the create citing it reserves; a dry run creates nothing", async () => {
    const before = await c.balance();
    const dry = await c.music.quote({ prompt: "a quoted song", durationSeconds: 30 });
    assert.equal(dry.object, "quote");
    assert.match(dry.id, /^quo_/);
    assert.equal(dry.credits, 30, "1 credit per second");
    assert.equal(dry.eta.window, "1h");
    assert.deepEqual(await c.balance(), before, "nothing reserved");
    assert.deepEqual((await c.jobs.listPage()).data, [], "nothing created");

    const quote = await c.quotes.create({ service: "music", input: { prompt: "a quoted song", duration_seconds: 30 } });
    assert.equal(quote.credits, dry.credits);
    const job = await c.music.create({ prompt: "a quoted song", durationSeconds: 30, quoteId: quote.id });
    assert.equal(job.cost_credits, quote.credits);
    const entries = await c.ledger.list({ limit: 20 }).toArray(50);
    assert.deepEqual(
      entries.filter((e) => e.job_id === job.id).map((e) => [e.type, e.amount]),
      [["reservation", quote.credits]],
    );
    await assert.rejects(c.music.create({ prompt: "a quoted song", durationSeconds: 30, quoteId: quote.id }), (err) => {
      assert.ok(err instanceof ConflictError);
      assert.equal(err.code, "quote_used");
      return true;
    });
    await assert.rejects(c.quotes.create({ service: "music", input: { prompt: "x", duration_seconds: 1 } }), (err) => {
      assert.ok(err instanceof InvalidRequestError);
      assert.equal(err.param, "input.duration_seconds");
      return true;
    });
    const done = await c.jobs.wait(job.id, { timeoutMs: 60_000 });
    assert.equal(done.status, "completed");
  });
});

describe("live progress", { skip, concurrency: true }, () => {
  const c = skip ? null : client("STREAM_KEY");

  test("a translation's stream: every event in order, its languages, then the end", async () => {
    const job = await c.translations.create({
      videoUrl: "https://videos.example/talk.mp4",
      targetLanguages: ["es", "de"],
      tier: "standard",
      sandboxScenario: { delay: 1 },
    });
    const events = [];
    for await (const event of c.jobs.stream(job.id)) events.push(event);
    const final = events.at(-1);
    assert.ok(isFinalStreamEvent(final));
    assert.equal(final.type, "job.completed");
    assert.deepEqual(
      final.job.languages.map((l) => [l.language, l.status]),
      [
        ["es", "completed"],
        ["de", "completed"],
      ],
    );
    const ids = events.map((e) => e.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "ids in order");
    const again = [];
    for await (const event of c.jobs.stream(job.id, { lastEventId: final.id })) again.push(event);
    assert.deepEqual(again, [], "after the final event: 204, nothing more");
  });

  test("wait() follows the stream; another account's job is 404", async () => {
    const job = await c.music.create({ prompt: "streamed", sandboxScenario: { delay: 1 } });
    const types = [];
    const done = await c.music.wait(job.id, { timeoutMs: 20_000, onEvent: (e) => types.push(e.type) });
    assert.equal(done.status, "completed");
    assert.equal(types.at(-1), "job.completed", "read from the stream, not by polling");
    await assert.rejects(async () => {
      for await (const _ of client("OTHER_KEY").jobs.stream(job.id)) void _;
    }, NotFoundError);
  });
});

describe("low balance", { skip, concurrency: true }, () => {
  test("the standing, a threshold, the default, off; test keys may not set it", async () => {
    const c = client("ISSUE19_LIVE_KEY");
    const standing = await c.lowBalance();
    assert.equal(standing.object, "low_balance");
    assert.equal(standing.available, (await c.balance()).available);
    const high = await c.setLowBalance(standing.available + 1000);
    assert.deepEqual([high.threshold_source, high.low], ["custom", true]);
    assert.equal((await c.setLowBalance(null)).threshold_source, "default");
    assert.equal((await c.setLowBalance(0)).threshold, 0);
    await assert.rejects(client("TEST_KEY").setLowBalance(500), (err) => {
      assert.ok(err instanceof PermissionDeniedError);
      assert.equal(err.code, "live_key_required");
      return true;
    });
  });
});

describe("status", { skip, concurrency: true }, () => {
  const c = skip ? null : client("TEST_KEY");

  test("the summary, typed; subscriptions of the account", async () => {
    const summary = await c.status.summary();
    assert.ok(summary.page.id);
    assert.ok(summary.components.some((component) => component.id === "music"));
    for (const component of summary.components) {
      assert.deepEqual(Object.keys(component.uptime).sort(), ["24h", "30d", "7d", "90d"]);
    }
    // The suite's status service refuses receivers on this machine: the refusal names the url.
    await assert.rejects(c.status.subscribe("http://127.0.0.1:9/hooks"), (err) => {
      assert.ok(err instanceof InvalidRequestError);
      assert.equal(err.param, "url");
      return true;
    });
    assert.deepEqual((await c.status.subscriptions()).data, []);
    await assert.rejects(c.status.unsubscribe("ssub_0000000000000000"), NotFoundError);
  });
});
