// Live progress against a scripted node:http server: the SSE wire format read from fetch's
// body stream, a dropped stream resumed with Last-Event-ID, 204, bounded reconnects, refusals,
// and wait() following the stream or polling when the stream is refused.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { APIConnectionError, ClipMix, NotFoundError, SSEDecoder, isFinalStreamEvent, webhooks } from "clipmix";
import { JOB, apiError, json, scriptedServer } from "./helpers.mjs";

const servers = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function serve(answer) {
  const server = await scriptedServer(answer);
  servers.push(server);
  return server;
}

function client(server) {
  return new ClipMix({ apiKey: "sk_test_unit", baseUrl: server.url });
}

const DUB = { url: "https://cdn/es.mp4", expires_at: "2026-12-07T01:00:00Z", content_type: "video/mp4", bytes: 10 };
const job = (status, es) => ({
  ...JOB,
  service: "translations",
  status,
  languages: [{ language: "es", status: es, output: es === "completed" ? DUB : null, error: null, completed_at: null }],
});
const sse = (id, event, data) => `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
const FIRST =
  "retry: 10\n\n" +
  sse(0, "job.queued", { job: job("queued", "queued") }) +
  sse(0, "queue_position", { object: "queue_position", job_id: "job_01", queue_position: 2 }) +
  ": heartbeat\n\n";
const REST =
  sse(1, "job.language_completed", {
    job: job("processing", "completed"),
    language: { language: "es", output: DUB, completed_at: "2026-12-07T00:00:01Z" },
  }) + sse(2, "job.completed", { job: job("completed", "completed") });

function stream(res, text, { chunked = false } = {}) {
  res.writeHead(200, { "Content-Type": "text/event-stream" });
  if (!chunked) return res.end(text);
  // Byte by byte in CRLF form: lines split across chunks still parse.
  const bytes = Buffer.from(text.replaceAll("\n", "\r\n"));
  let i = 0;
  const tick = () => {
    if (i >= bytes.length) return res.end();
    res.write(bytes.subarray(i, i + 7));
    i += 7;
    setImmediate(tick);
  };
  tick();
}

describe("the SSE decoder", () => {
  test("reads events, comments, ids and retry as an EventSource does", () => {
    const d = new SSEDecoder();
    const lines = ["retry: 2000", "", ": heartbeat", "id: 7", "event: job.started", "data: {}", ""];
    const messages = lines.map((l) => d.feed(l)).filter(Boolean);
    assert.deepEqual(messages, [{ event: "job.started", id: "7", data: "{}" }]);
    assert.deepEqual([d.retryMs, d.comments, d.lastId], [2000, 1, "7"]);
  });
});

describe("client.jobs.stream", () => {
  test("a dropped stream resumes after the last event and misses nothing", async () => {
    const server = await serve((req, res) => stream(res, req.n === 1 ? FIRST : REST, { chunked: true }));
    const events = [];
    for await (const event of client(server).jobs.stream("job_01")) events.push(event);
    assert.deepEqual(
      events.map((e) => [e.id, e.type]),
      [
        [0, "job.queued"],
        [0, "queue_position"],
        [1, "job.language_completed"],
        [2, "job.completed"],
      ],
    );
    assert.equal(events[1].queue_position, 2);
    assert.equal(events[2].language.output.url, DUB.url);
    assert.ok(isFinalStreamEvent(events[3]));
    assert.equal(events[3].job.languages[0].status, "completed");
    assert.equal(server.requests[0].url, "/api/v1/jobs/job_01/events");
    assert.equal(server.requests[0].headers.accept, "text/event-stream");
    assert.equal(server.requests[0].headers["last-event-id"], undefined);
    assert.equal(server.requests[1].headers["last-event-id"], "0");
  });

  test("204 after the final event: nothing more", async () => {
    const server = await serve((req, res) => {
      res.writeHead(204);
      res.end();
    });
    const events = [];
    for await (const event of client(server).jobs.stream("job_01", { lastEventId: 2 })) events.push(event);
    assert.deepEqual(events, []);
    assert.equal(server.requests[0].headers["last-event-id"], "2");
  });

  test("reconnects are bounded", async () => {
    const server = await serve((req, res) => res.socket.destroy());
    await assert.rejects(async () => {
      for await (const _ of client(server).jobs.stream("job_01", { maxReconnects: 1 })) void _;
    }, APIConnectionError);
    assert.equal(server.requests.length, 2);
  });

  test("a quiet connection is resumed", async () => {
    const server = await serve((req, res) => {
      if (req.n === 1) return res.writeHead(200, { "Content-Type": "text/event-stream" }); // silent
      stream(res, REST);
    });
    const events = [];
    for await (const event of client(server).jobs.stream("job_01", { idleTimeoutMs: 200 })) events.push(event);
    assert.equal(events.at(-1).type, "job.completed");
  });

  test("a refusal is the API's error, not retried", async () => {
    const server = await serve((req, res) => apiError(res, 404, "invalid_request_error", "resource_missing"));
    await assert.rejects(async () => {
      for await (const _ of client(server).jobs.stream("job_01")) void _;
    }, NotFoundError);
    assert.equal(server.requests.length, 1);
  });
});

describe("wait()", () => {
  test("follows the stream: every state and event seen, one request", async () => {
    const server = await serve((req, res) => stream(res, FIRST + REST));
    const statuses = [];
    const types = [];
    const done = await client(server).translations.wait("job_01", {
      onUpdate: (j) => statuses.push(j.status),
      onEvent: (e) => types.push(e.type),
    });
    assert.equal(done.status, "completed");
    assert.deepEqual(statuses, ["queued", "processing", "completed"]);
    assert.ok(types.includes("queue_position"));
    assert.equal(server.requests.length, 1);
  });

  test("keeps its deadline on a silent stream", async () => {
    const server = await serve((req, res) => {
      if (req.n === 1) return res.writeHead(200, { "Content-Type": "text/event-stream" }).flushHeaders();
      json(res, 200, { ...JOB, status: "processing" });
    });
    const started = Date.now();
    await assert.rejects(
      client(server).jobs.wait("job_01", { timeoutMs: 300 }),
      (err) => err.name === "WaitTimeoutError" && err.job.status === "processing",
    );
    assert.ok(Date.now() - started < 2_000);
  });

  test("polls when the stream is refused (429 too_many_job_streams)", async () => {
    const server = await serve((req, res) =>
      req.n === 1
        ? apiError(res, 429, "rate_limit_error", "too_many_job_streams", {}, { "Retry-After": "1" })
        : json(res, 200, JOB),
    );
    const done = await client(server).music.wait("job_01", { pollIntervalMs: 10 });
    assert.equal(done.status, "completed");
    assert.deepEqual(
      server.requests.map((r) => r.url),
      ["/api/v1/jobs/job_01/events", "/api/v1/music/job_01"],
    );
  });
});

describe("quotes, low balance, status on the wire", () => {
  test("quote() is the create's dry run; quoteId cites a quote", async () => {
    const server = await serve((req, res) => json(res, req.url.includes("dry_run") ? 200 : 201, req.url.includes("dry_run") ? { object: "quote", id: "quo_1" } : JOB));
    const c = client(server);
    const quote = await c.music.quote({ prompt: "a song", durationSeconds: 30 });
    assert.equal(quote.id, "quo_1");
    await c.music.create({ prompt: "a song", durationSeconds: 30, quoteId: quote.id });
    const [dry, create] = server.requests;
    assert.equal(dry.url, "/api/v1/music?dry_run=true");
    assert.deepEqual(JSON.parse(dry.body), { prompt: "a song", duration_seconds: 30 });
    assert.equal(create.headers["clipmix-quote-id"], "quo_1");
    assert.deepEqual(JSON.parse(create.body), { prompt: "a song", duration_seconds: 30 });
  });

  test("setLowBalance sends the threshold, null for the default", async () => {
    const server = await serve((req, res) => json(res, 200, { object: "low_balance" }));
    await client(server).setLowBalance(null);
    await client(server).setLowBalance(500);
    assert.deepEqual(
      server.requests.map((r) => [r.method, r.url, JSON.parse(r.body)]),
      [
        ["PUT", "/api/v1/balance/low-balance", { threshold: null }],
        ["PUT", "/api/v1/balance/low-balance", { threshold: 500 }],
      ],
    );
  });

  test("verifyStatusEvent checks a status webhook's Standard Webhooks signature", async () => {
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const body = JSON.stringify({ id: "sevt_1", type: "status.incident.created", created_at: "", page: {}, data: {} });
    const headers = await webhooks.sign(body, secret);
    delete headers["X-ClipMix-Signature"]; // status webhooks carry only the Standard headers
    const event = await webhooks.verifyStatusEvent(body, headers, secret);
    assert.equal(event.type, "status.incident.created");
    await assert.rejects(webhooks.verifyStatusEvent(body.replace("sevt_1", "sevt_2"), headers, secret));
  });
});
