/**
 * Live progress: `GET /api/v1/jobs/{id}/events` (Server-Sent Events) read from `fetch`'s body
 * stream, with no dependency: the WHATWG rules an `EventSource` uses, plus what an
 * `EventSource` cannot do (the API key in a header, bounded reconnects, ending at the final
 * event).
 */
import { APIConnectionError, APIServerError, ClipMixError } from "./errors.js";
import type { Transport } from "./core.js";
import type { JobStreamEvent } from "./types.js";

/** A stream silent this long (the server's heartbeat comes every 15 s) is dead and resumed. */
export const STREAM_IDLE_TIMEOUT_MS = 45_000;
/** Resumes in a row without an event or heartbeat before the iteration gives up. */
export const STREAM_RECONNECTS = 5;
const FINAL = new Set(["job.completed", "job.failed", "job.canceled"]);

export interface JobStreamOptions {
  /** Resume after this event id (the iteration ends at once if it was the final one). */
  lastEventId?: number | undefined;
  /** Resumes in a row without an event or heartbeat (default 5); then `APIConnectionError`. */
  maxReconnects?: number | undefined;
  /** A connection silent this long is resumed (default 45,000 ms). */
  idleTimeoutMs?: number | undefined;
  /** Stops the iteration (it rejects with the signal's reason). */
  signal?: AbortSignal | undefined;
}

/** One dispatched event: its name, the last id seen and its data. */
export interface SSEMessage {
  event: string;
  id: string | undefined;
  data: string;
}

/** Feeds lines (without their line ending); answers a message at each blank line that ends an
 * event with data. `lastId` and `retryMs` persist across events, as in an EventSource. */
export class SSEDecoder {
  lastId: string | undefined;
  retryMs: number | undefined;
  /** Comment lines seen (the server's `: heartbeat`). */
  comments = 0;
  private event = "";
  private data: string[] = [];

  constructor(lastId?: string) {
    this.lastId = lastId;
  }

  feed(line: string): SSEMessage | undefined {
    if (line === "") {
      const { data, event } = this;
      this.data = [];
      this.event = "";
      if (data.length === 0) return undefined;
      return { event: event || "message", id: this.lastId, data: data.join("\n") };
    }
    if (line.startsWith(":")) {
      this.comments++;
      return undefined;
    }
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "data") this.data.push(value);
    else if (name === "event") this.event = value;
    else if (name === "id" && !value.includes("\0")) this.lastId = value;
    else if (name === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    return undefined;
  }
}

/** Splits text chunks into lines at CRLF, LF or CR (a CR at a chunk's end waits for the next). */
export class LineSplitter {
  private rest = "";

  push(chunk: string): string[] {
    const text = this.rest + chunk;
    const lines: string[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c !== "\n" && c !== "\r") continue;
      if (c === "\r" && i === text.length - 1) break; // maybe the CR of a CRLF
      lines.push(text.slice(start, i));
      if (c === "\r" && text[i + 1] === "\n") i++;
      start = i + 1;
    }
    this.rest = text.slice(start);
    return lines;
  }
}

/** A message of the job stream as a typed event (its data is one line of JSON). */
export function jobStreamEvent(message: SSEMessage): JobStreamEvent {
  let data: unknown;
  try {
    data = JSON.parse(message.data);
  } catch {
    data = {};
  }
  const id = message.id !== undefined && /^\d+$/.test(message.id) ? Number(message.id) : undefined;
  const body = data !== null && typeof data === "object" ? (data as Record<string, unknown>) : {};
  return { ...body, type: message.event, id } as unknown as JobStreamEvent;
}

/** True for the event after which the job's stream ends. */
export function isFinalStreamEvent(event: JobStreamEvent): boolean {
  return FINAL.has(event.type);
}

class IdleSignal extends Error {}

function backoffMs(failures: number): number {
  const base = Math.min(8_000, 500 * 2 ** (failures - 1));
  return base / 2 + (Math.random() * base) / 2;
}

function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The job's events until its final one, reconnecting with `Last-Event-ID` when a connection
 * ends early or goes quiet; at most `maxReconnects` times in a row without an event or a
 * heartbeat, backing off. A refusal (404, 429 `too_many_job_streams`, …) throws the API's
 * error.
 */
export async function* streamJob(
  transport: Transport,
  id: string,
  options: JobStreamOptions = {},
): AsyncGenerator<JobStreamEvent, void, undefined> {
  const maxReconnects = Math.max(0, Math.floor(options.maxReconnects ?? STREAM_RECONNECTS));
  const idleMs = options.idleTimeoutMs ?? STREAM_IDLE_TIMEOUT_MS;
  const path = `/api/v1/jobs/${encodeURIComponent(id)}/events`;
  let last = options.lastEventId;
  let failures = 0;
  let retryMs: number | undefined;
  for (;;) {
    const controller = new AbortController();
    const user = options.signal;
    if (user?.aborted) throw user.reason;
    const onUserAbort = () => controller.abort(user?.reason);
    user?.addEventListener("abort", onUserAbort, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new IdleSignal()), idleMs);
    };
    let moved = false;
    let failure: unknown;
    try {
      arm();
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      if (last !== undefined) headers["Last-Event-ID"] = String(last);
      const response = await transport.open(path, headers, controller.signal);
      if (response === undefined) return; // 204: settled, its final event already seen
      const decoder = new SSEDecoder(last === undefined ? undefined : String(last));
      const splitter = new LineSplitter();
      const text = new TextDecoder();
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          arm();
          for (const line of splitter.push(text.decode(value, { stream: true }))) {
            const heard = decoder.comments;
            const message = decoder.feed(line);
            if (decoder.comments > heard) moved = true;
            if (message === undefined) continue;
            const event = jobStreamEvent(message);
            moved = true;
            if (event.id !== undefined) last = event.id;
            yield event;
            if (isFinalStreamEvent(event)) return;
          }
        }
      } finally {
        reader.cancel().catch(() => undefined);
      }
      retryMs = decoder.retryMs ?? retryMs;
    } catch (error) {
      if (user?.aborted) throw user.reason;
      const idle = controller.signal.aborted && controller.signal.reason instanceof IdleSignal;
      const dropped = !(error instanceof ClipMixError) || error instanceof APIConnectionError;
      if (!idle && !dropped && !(error instanceof APIServerError)) throw error; // a refusal
      failure = error;
    } finally {
      clearTimeout(timer);
      user?.removeEventListener("abort", onUserAbort);
    }
    failures = moved ? 0 : failures + 1;
    if (failures > maxReconnects) {
      if (failure instanceof ClipMixError) throw failure;
      throw new APIConnectionError({
        message: `The event stream of ${id} ended ${failures} times in a row without an event.`,
        code: "connection_error",
        cause: failure,
      });
    }
    await wait(failures ? backoffMs(failures) : (retryMs ?? 0), options.signal);
  }
}
