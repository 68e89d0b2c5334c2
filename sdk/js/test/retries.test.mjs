// The retry policy and the wire format, against a local node:http server that scripts answers.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import {
  APIConnectionError,
  APIServerError,
  APITimeoutError,
  ClipMix,
  IdempotencyKeyInUseError,
  InvalidRequestError,
  RateLimitedError,
  VERSION,
} from "clipmix";
import { JOB, apiError, json, scriptedServer } from "./helpers.mjs";

const servers = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function serve(answer) {
  const server = await scriptedServer(answer);
  servers.push(server);
  return server;
}

function client(server, options = {}) {
  return new ClipMix({ apiKey: "sk_test_unit", baseUrl: server.url, ...options });
}

describe("safe retries", () => {
  test("503 then 201: retried once with the same generated Idempotency-Key", async () => {
    const server = await serve((req, res) =>
      req.n === 1
        ? apiError(res, 503, "api_error", "service_unavailable")
        : json(res, 201, { ...JOB, id: "job_after_503" }),
    );
    const retries = [];
    const job = await client(server, { onRetry: (info) => retries.push(info) }).music.create({
      prompt: "a song",
    });
    assert.equal(job.id, "job_after_503");
    assert.equal(server.requests.length, 2);
    const [first, second] = server.requests.map((r) => r.headers["idempotency-key"]);
    assert.match(first, /^[0-9a-f-]{36}$/);
    assert.equal(second, first);
    assert.equal(retries.length, 1);
    assert.ok(retries[0].error instanceof APIServerError);
    assert.equal(retries[0].idempotencyKey, first);
  });

  test("each call generates its own key; the caller's key is sent as given", async () => {
    const server = await serve((_, res) => json(res, 201, JOB));
    const c = client(server);
    await c.music.create({ prompt: "one" });
    await c.music.create({ prompt: "two" });
    await c.music.create({ prompt: "three", idempotencyKey: "order-42" });
    const keys = server.requests.map((r) => r.headers["idempotency-key"]);
    assert.notEqual(keys[0], keys[1]);
    assert.equal(keys[2], "order-42");
  });

  test("429 honours Retry-After before retrying", async () => {
    const server = await serve((req, res) =>
      req.n === 1
        ? apiError(res, 429, "rate_limit_error", "rate_limited", {}, { "Retry-After": "1" })
        : json(res, 200, JOB),
    );
    const started = performance.now();
    await client(server).jobs.get("job_01");
    const waited = performance.now() - started;
    assert.equal(server.requests.length, 2);
    assert.ok(waited >= 1000, `retried after ${waited} ms, before Retry-After: 1`);
  });

  test("409 idempotency_key_in_use is retried with the same key until the answer", async () => {
    const server = await serve((req, res) =>
      req.n <= 2
        ? apiError(res, 409, "idempotency_error", "idempotency_key_in_use", {}, { "Retry-After": "0" })
        : json(res, 201, JOB),
    );
    await client(server).music.create({ prompt: "x", idempotencyKey: "k-409" });
    assert.deepEqual(
      server.requests.map((r) => r.headers["idempotency-key"]),
      ["k-409", "k-409", "k-409"],
    );
  });

  test("other 409s (job_not_cancelable) are not retried", async () => {
    const server = await serve((_, res) =>
      apiError(res, 409, "invalid_request_error", "job_not_cancelable"),
    );
    await assert.rejects(client(server).jobs.cancel("job_01"), (err) => {
      assert.equal(err.code, "job_not_cancelable");
      assert.ok(!(err instanceof IdempotencyKeyInUseError));
      return true;
    });
    assert.equal(server.requests.length, 1);
  });

  test("bounded: maxRetries 2 means three attempts, then the last error", async () => {
    const server = await serve((_, res) =>
      apiError(res, 502, "api_error", "bad_gateway", {}, { "Retry-After": "0" }),
    );
    await assert.rejects(client(server, { maxRetries: 2 }).balance(), (err) => {
      assert.ok(err instanceof APIServerError);
      assert.equal(err.status, 502);
      assert.equal(err.requestId, "req_502_bad_gateway");
      return true;
    });
    assert.equal(server.requests.length, 3);
  });

  test("maxRetries 0 per call turns retries off", async () => {
    const server = await serve((_, res) => apiError(res, 503, "api_error", "service_unavailable"));
    await assert.rejects(client(server).balance({ maxRetries: 0 }), APIServerError);
    assert.equal(server.requests.length, 1);
  });

  test("400 is never retried", async () => {
    const server = await serve((_, res) =>
      apiError(res, 400, "invalid_request_error", "parameter_invalid", {
        param: "duration_seconds",
      }),
    );
    await assert.rejects(client(server).music.create({ prompt: "x" }), (err) => {
      assert.ok(err instanceof InvalidRequestError);
      assert.equal(err.param, "duration_seconds");
      return true;
    });
    assert.equal(server.requests.length, 1);
  });

  test("a dropped connection is retried with the same key", async () => {
    const server = await serve((req, res) => {
      if (req.n === 1) res.socket.destroy();
      else json(res, 201, JOB);
    });
    const job = await client(server).music.create({ prompt: "x" });
    assert.equal(job.id, JOB.id);
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[0].headers["idempotency-key"], server.requests[1].headers["idempotency-key"]);
  });

  test("connection refused: APIConnectionError after the retries", async () => {
    const server = await serve((_, res) => json(res, 200, {}));
    await server.close();
    await assert.rejects(
      client(server, { maxRetries: 1 }).balance(),
      (err) => err instanceof APIConnectionError && !(err instanceof APITimeoutError),
    );
  });

  test("a slow answer is an APITimeoutError; a retry that answers in time succeeds", async () => {
    const server = await serve((req, res) => {
      if (req.n === 1) setTimeout(() => json(res, 200, JOB), 1500);
      else json(res, 200, JOB);
    });
    await assert.rejects(
      client(server, { timeoutMs: 200, maxRetries: 0 }).jobs.get("job_01"),
      APITimeoutError,
    );
    const ok = await client(server, { timeoutMs: 200, maxRetries: 1 }).jobs.get("job_01");
    assert.equal(ok.id, JOB.id);
  });

  test("a 429 whose Retry-After is too long is thrown at once, with retryAfter", async () => {
    const server = await serve((_, res) =>
      apiError(res, 429, "rate_limit_error", "rate_limited", {}, { "Retry-After": "3600" }),
    );
    await assert.rejects(client(server).balance(), (err) => {
      assert.ok(err instanceof RateLimitedError);
      assert.equal(err.retryAfter, 3600);
      return true;
    });
    assert.equal(server.requests.length, 1);
  });

  test("an aborted call is not retried", async () => {
    const server = await serve((_, res) => setTimeout(() => json(res, 200, JOB), 2000));
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("user gave up")), 100);
    await assert.rejects(
      client(server).jobs.get("job_01", { signal: controller.signal }),
      /user gave up/,
    );
    assert.equal(server.requests.length, 1);
  });
});

describe("wire format", () => {
  test("creates: snake_case body, auth, User-Agent, scenario and Prefer headers", async () => {
    const server = await serve((_, res) => json(res, 201, JOB));
    const c = client(server);
    await c.music.create({
      prompt: "a lullaby",
      lyrics: "[verse] hush",
      durationSeconds: 30,
      vocals: "female",
      style: undefined,
      idempotencyKey: "order-42",
      sandboxScenario: { delay: 2, fail: "provider_timeout" },
      wait: 5,
    });
    await c.translations.create({
      videoUrl: "https://x/v.mp4",
      targetLanguages: ["es"],
      tier: "premium",
      voiceClone: true,
    });
    await c.familyVideos.create({ photoUrls: ["https://x/1.jpg"], mode: "moment", aspectRatio: "1:1" });
    await c.avatars.create({
      kind: "talking_head",
      tier: "balanced",
      faceImageUrl: "https://x/f.jpg",
      durationSeconds: 3,
      script: "hi",
    });
    const [music, translation, family, avatar] = server.requests;
    assert.equal(music.method, "POST");
    assert.equal(music.url, "/api/v1/music");
    assert.deepEqual(JSON.parse(music.body), {
      prompt: "a lullaby",
      lyrics: "[verse] hush",
      duration_seconds: 30,
      vocals: "female",
    });
    assert.equal(music.headers.authorization, "Bearer sk_test_unit");
    assert.equal(music.headers["user-agent"], `clipmix-js/${VERSION}`);
    assert.equal(music.headers["content-type"], "application/json");
    assert.equal(music.headers["clipmix-sandbox-scenario"], "delay=2, fail=provider_timeout");
    assert.equal(music.headers.prefer, "wait=5");
    assert.equal(music.headers["idempotency-key"], "order-42");
    assert.equal(translation.url, "/api/v1/translations");
    assert.deepEqual(JSON.parse(translation.body), {
      video_url: "https://x/v.mp4",
      target_languages: ["es"],
      tier: "premium",
      voice_clone: true,
    });
    assert.equal(family.url, "/api/v1/family-videos");
    assert.deepEqual(JSON.parse(family.body), {
      photo_urls: ["https://x/1.jpg"],
      mode: "moment",
      aspect_ratio: "1:1",
    });
    assert.equal(avatar.url, "/api/v1/avatars");
    assert.deepEqual(JSON.parse(avatar.body), {
      kind: "talking_head",
      tier: "balanced",
      face_image_url: "https://x/f.jpg",
      duration_seconds: 3,
      script: "hi",
    });
  });

  test("GETs carry no Idempotency-Key and no body; list filters are query parameters", async () => {
    const server = await serve((_, res) => json(res, 200, { object: "list", data: [], has_more: false }));
    const c = client(server);
    await c.jobs.listPage({
      limit: 2,
      service: "music",
      status: "completed",
      createdGte: new Date("2026-11-28T00:00:00Z"),
      createdLte: "2026-11-29T00:00:00+00:00",
    });
    const [req] = server.requests;
    assert.equal(req.method, "GET");
    assert.equal(req.headers["idempotency-key"], undefined);
    assert.equal(req.body, "");
    const url = new URL(req.url, "http://x");
    assert.equal(url.pathname, "/api/v1/jobs");
    assert.equal(url.searchParams.get("limit"), "2");
    assert.equal(url.searchParams.get("service"), "music");
    assert.equal(url.searchParams.get("created[gte]"), "2026-11-28T00:00:00.000Z");
    assert.equal(url.searchParams.get("created[lte]"), "2026-11-29T00:00:00+00:00");
  });

  test("list() follows starting_after while has_more", async () => {
    const ids = ["job_5", "job_4", "job_3", "job_2", "job_1"];
    const server = await serve((req, res) => {
      const url = new URL(req.url, "http://x");
      const limit = Number(url.searchParams.get("limit"));
      const after = url.searchParams.get("starting_after");
      const start = after ? ids.indexOf(after) + 1 : 0;
      const data = ids.slice(start, start + limit).map((id) => ({ ...JOB, id }));
      json(res, 200, { object: "list", data, has_more: start + limit < ids.length });
    });
    const seen = [];
    for await (const job of client(server).jobs.list({ limit: 2 })) seen.push(job.id);
    assert.deepEqual(seen, ids);
    assert.equal(server.requests.length, 3);
    const firstTwo = await client(server).jobs.list({ limit: 2 }).toArray(2);
    assert.deepEqual(firstTwo.map((j) => j.id), ["job_5", "job_4"]);
  });

  test("events.follow() continues from each answer's next_after", async () => {
    const server = await serve((req, res) => {
      const url = new URL(req.url, "http://x");
      const after = url.searchParams.get("after");
      if (after === null) return json(res, 200, { object: "list", data: [], has_more: false, next_after: "pos_1" });
      const n = Number(after.slice(4));
      const data = n < 3 ? [{ id: `evt_${n}`, object: "event" }] : [];
      json(res, 200, { object: "list", data, has_more: false, next_after: `pos_${n + 1}` });
    });
    const got = [];
    for await (const event of client(server).events.follow({ wait: 1 })) {
      got.push(event.id);
      if (got.length === 2) break;
    }
    assert.deepEqual(got, ["evt_1", "evt_2"]);
    const queries = server.requests.map((r) => new URL(r.url, "http://x").searchParams);
    assert.deepEqual(queries.map((q) => q.get("after")), [null, "pos_1", "pos_2"]);
    assert.ok(queries.every((q) => q.get("wait") === "1"));
  });

  test("wait() without the stream polls with growing pauses until a final status", async () => {
    const statuses = ["queued", "processing", "processing", "completed"];
    const server = await serve((req, res) =>
      json(res, 200, { ...JOB, status: statuses[Math.min(req.n - 1, statuses.length - 1)] }),
    );
    const job = await client(server).music.wait("job_01", { pollIntervalMs: 20, stream: false });
    assert.equal(job.status, "completed");
    assert.equal(server.requests.length, 4);
    assert.ok(server.requests.every((r) => r.url === "/api/v1/music/job_01"));
  });

  test("wait() polls with the ETag it holds; a 304 keeps that copy and is no new state", async () => {
    const answers = [
      (res) => json(res, 200, { ...JOB, status: "queued" }, { ETag: '"v1"' }),
      (res) => {
        res.writeHead(304, { ETag: '"v1"' });
        res.end();
      },
      (res) => json(res, 200, { ...JOB, status: "processing" }, { ETag: '"v2"' }),
      (res) => json(res, 200, { ...JOB, status: "completed" }, { ETag: '"v3"' }),
    ];
    const server = await serve((req, res) => answers[req.n - 1](res));
    const seen = [];
    const job = await client(server).jobs.wait("job_01", {
      pollIntervalMs: 10,
      stream: false,
      onUpdate: (j) => seen.push(j.status),
    });
    assert.equal(job.status, "completed");
    assert.deepEqual(seen, ["queued", "processing", "completed"]);
    assert.deepEqual(
      server.requests.map((r) => r.headers["if-none-match"]),
      [undefined, '"v1"', '"v1"', '"v2"'],
    );
  });

  test("wait() gives up at its deadline with the last state", async () => {
    const server = await serve((_, res) => json(res, 200, { ...JOB, status: "processing" }));
    await assert.rejects(
      client(server).jobs.wait("job_01", { timeoutMs: 150, pollIntervalMs: 20, stream: false }),
      (err) => err.name === "WaitTimeoutError" && err.job.status === "processing",
    );
  });

  test("the key never shows when a client is logged", async () => {
    const { inspect } = await import("node:util");
    const c = new ClipMix({ apiKey: "sk_test_secret_value", baseUrl: "http://127.0.0.1:9" });
    assert.ok(!inspect(c, { depth: 10 }).includes("sk_test_secret_value"));
    assert.ok(!JSON.stringify(c).includes("sk_test_secret_value"));
  });

  test("apiKey and baseUrl fall back to CLIPMIX_API_KEY and CLIPMIX_BASE_URL", async () => {
    const server = await serve((_, res) => json(res, 200, { object: "balance" }));
    const saved = { key: process.env.CLIPMIX_API_KEY, url: process.env.CLIPMIX_BASE_URL };
    process.env.CLIPMIX_API_KEY = "sk_test_from_env";
    process.env.CLIPMIX_BASE_URL = server.url + "/";
    try {
      const c = new ClipMix();
      assert.equal(c.baseUrl, server.url);
      await c.balance();
      assert.equal(server.requests[0].headers.authorization, "Bearer sk_test_from_env");
      delete process.env.CLIPMIX_API_KEY;
      assert.throws(() => new ClipMix(), /CLIPMIX_API_KEY/);
      delete process.env.CLIPMIX_BASE_URL;
      assert.equal(new ClipMix({ apiKey: "sk_test_x" }).baseUrl, "https://api.clipmix.example");
    } finally {
      for (const [name, value] of [["CLIPMIX_API_KEY", saved.key], ["CLIPMIX_BASE_URL", saved.url]]) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});
