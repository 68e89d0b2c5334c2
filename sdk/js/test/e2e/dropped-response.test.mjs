// The network loses the answer of a create after the gateway committed the job: a node:net
// proxy between the SDK and the gateway forwards the request, reads the server's answer and
// destroys the client's socket instead of passing it on. The SDK retries with the same
// Idempotency-Key, gets the kept answer, and the account holds exactly one job.
import assert from "node:assert/strict";
import { connect, createServer } from "node:net";
import { after, before, describe, test } from "node:test";

import { ClipMix } from "clipmix";
import { BASE_URL, client, key, skip } from "./setup.mjs";

const REQUEST_HEAD = /(GET|POST|PUT|DELETE) (\S+) HTTP\/1\.1\r\n([\s\S]*?)\r\n\r\n/g;

function answerComplete(answer) {
  const end = answer.indexOf("\r\n\r\n");
  if (end === -1) return false;
  const length = Number(/^content-length:\s*(\d+)/im.exec(answer.slice(0, end))?.[1] ?? 0);
  return Buffer.byteLength(answer.slice(end + 4), "latin1") >= length;
}

/** A TCP proxy to `target` that swallows the answer to the first request `drop` picks. */
async function answerDroppingProxy(target, drop) {
  const { hostname, port } = new URL(target);
  const seen = []; // { method, path, idempotencyKey, answer }
  let armed = true;
  const sockets = new Set();
  const server = createServer((downstream) => {
    const upstream = connect(Number(port), hostname);
    sockets.add(downstream).add(upstream);
    let text = "";
    let cursor = 0;
    let current = null; // the request whose answer comes next on this connection
    let dropping = false;
    downstream.on("data", (chunk) => {
      text += chunk.toString("latin1");
      REQUEST_HEAD.lastIndex = cursor;
      for (let m = REQUEST_HEAD.exec(text); m; m = REQUEST_HEAD.exec(text)) {
        cursor = REQUEST_HEAD.lastIndex;
        const idempotencyKey = /^idempotency-key:\s*(.+)$/im.exec(m[3])?.[1]?.trim();
        current = { method: m[1], path: m[2], idempotencyKey, answer: "" };
        seen.push(current);
        if (armed && drop(current)) {
          armed = false;
          dropping = true;
          current.dropped = true;
        }
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (current) current.answer += chunk.toString("latin1");
      if (dropping) {
        // The server has answered (so it committed): the client never hears of it.
        if (!answerComplete(current.answer)) return;
        downstream.destroy();
        upstream.destroy();
        return;
      }
      downstream.write(chunk);
    });
    const close = () => {
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(resolve);
      }),
  };
}

const isCreate = (request) => request.method === "POST" && request.path === "/api/v1/music";
const jobIdIn = (answer) => /"id":\s*"(job_[A-Za-z0-9]+)"/.exec(answer)?.[1];

describe("a create whose answer is lost", { skip }, () => {
  let proxy;
  before(async () => {
    proxy = await answerDroppingProxy(BASE_URL, isCreate);
  });
  after(() => proxy?.close());

  test("the SDK retries with the same key and exactly one job exists", async () => {
    const direct = client("DROP_KEY");
    assert.equal((await direct.jobs.listPage({ limit: 100 })).data.length, 0, "a fresh account");

    const retries = [];
    const viaProxy = new ClipMix({
      apiKey: key("DROP_KEY"),
      baseUrl: proxy.url,
      onRetry: (info) => retries.push(info),
    });
    const job = await viaProxy.music.create({ prompt: "a song whose answer gets lost" });

    const creates = proxy.seen.filter(isCreate);
    assert.equal(creates.length, 2, "the create was sent twice");
    assert.ok(creates[0].dropped);
    assert.match(creates[0].answer, /^HTTP\/1\.1 201 /, "the server did answer the first one");
    assert.equal(jobIdIn(creates[0].answer), job.id, "the lost answer named the same job");
    assert.ok(creates[0].idempotencyKey, "a generated Idempotency-Key");
    assert.equal(creates[1].idempotencyKey, creates[0].idempotencyKey, "reused by the retry");
    assert.match(creates[1].answer, /^idempotent-replayed: true\r$/im, "the retry got the kept answer");
    assert.equal(retries.length, 1);
    assert.equal(retries[0].error.name, "APIConnectionError");

    const jobs = await direct.jobs.list({ limit: 100 }).toArray();
    assert.deepEqual(jobs.map((j) => j.id), [job.id], "exactly one job");
  });

  test("control: the same loss, retried without an Idempotency-Key, makes two jobs", async () => {
    const direct = client("DROP_KEY");
    const before = (await direct.jobs.list({ limit: 100 }).toArray()).length;
    const control = await answerDroppingProxy(BASE_URL, isCreate);
    try {
      const send = () =>
        fetch(`${control.url}/api/v1/music`, {
          method: "POST",
          headers: { Authorization: `Bearer ${key("DROP_KEY")}`, "Content-Type": "application/json" },
          body: JSON.stringify({ prompt: "a naive retry" }),
        });
      await assert.rejects(send(), TypeError);
      assert.equal((await send()).status, 201);
    } finally {
      await control.close();
    }
    const afterwards = (await direct.jobs.list({ limit: 100 }).toArray()).length;
    assert.equal(afterwards - before, 2, "without the key the lost answer costs a second job");
  });
});
