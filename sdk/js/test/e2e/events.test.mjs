// The Events API: the key's events as kept for reading, followed as a gap-free stream.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { NotFoundError } from "clipmix";
import { client, eventually, skip } from "./setup.mjs";

describe("events", { skip }, () => {
  const c = skip ? null : client("EVENTS_KEY");

  test("follow() yields each new event once, in order; get() and list() read them back", async () => {
    const controller = new AbortController();
    const seen = [];
    const cursors = [];
    const following = (async () => {
      try {
        for await (const event of c.events.follow({ wait: 2, signal: controller.signal, onCursor: (x) => cursors.push(x) })) {
          seen.push(event);
        }
      } catch (err) {
        if (!controller.signal.aborted) throw err;
      }
    })();
    // The stream starts when the first poll arrives: let it get there first.
    await eventually(() => cursors.length > 0, 15_000, "the stream's first cursor");
    const jobs = [];
    for (const prompt of ["first", "second", "third"]) jobs.push((await c.music.create({ prompt })).id);
    await eventually(() => seen.length >= 3, 20_000, "three events");
    controller.abort();
    await following;
    // Sandbox jobs settle in parallel: the stream's order is the events' order, not ours.
    assert.deepEqual(seen.map((e) => e.job.id).sort(), [...jobs].sort(), "each job's event once");
    assert.ok(seen.every((e) => e.type === "job.completed" && e.object === "event"));

    const one = await c.events.get(seen[1].id);
    assert.deepEqual(one, seen[1]);
    const history = await c.events.list({ limit: 1 }).toArray();
    assert.deepEqual(history.map((e) => e.id).sort(), seen.map((e) => e.id).sort(), "one per page, all of them");
    await assert.rejects(c.events.get("evt_00000000000000000000000000000000"), NotFoundError);
  });
});
