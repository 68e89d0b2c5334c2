import type { RequestOptions, Transport } from "./core.js";
import { PageIterator } from "./pagination.js";
import type { EventPage, EventStreamPage, EventTypeName, WebhookEvent } from "./types.js";

export interface EventListParams {
  /** Events per page, 1–100 (the API's default is 20). */
  limit?: number | undefined;
  /** History: start after this event id (newest first). */
  startingAfter?: string | undefined;
  type?: EventTypeName | undefined;
}

export interface EventPollParams {
  /** An event id or the `next_after` of the previous answer; without it, the stream starts
   * when the request arrives. */
  after?: string | undefined;
  /** Hold the request up to this many seconds (0–30; 1–30 without `after`) for an event. */
  wait?: number | undefined;
  limit?: number | undefined;
  type?: EventTypeName | undefined;
}

export interface EventFollowOptions {
  /** Start after this cursor (event id or `next_after`); default: from now on. */
  after?: string | undefined;
  /** Seconds each long poll may be held (default 25). */
  wait?: number | undefined;
  /** Events per poll (default 100). */
  limit?: number | undefined;
  type?: EventTypeName | undefined;
  /** Stops following (the iteration rejects with the signal's reason). */
  signal?: AbortSignal | undefined;
  /** Called with each new cursor, e.g. to store it and resume after a restart. */
  onCursor?: ((cursor: string) => void) | undefined;
}

/** `client.events`: the key's job events (the same bytes its webhook deliveries POST). */
export class Events {
  constructor(private readonly transport: Transport) {}

  get(id: string, options?: RequestOptions): Promise<WebhookEvent> {
    return this.transport.request({
      method: "GET",
      path: `/api/v1/events/${encodeURIComponent(id)}`,
      options,
    });
  }

  /** One page of the history, newest first. */
  listPage(params: EventListParams = {}, options?: RequestOptions): Promise<EventPage> {
    return this.transport.request({
      method: "GET",
      path: "/api/v1/events",
      query: { limit: params.limit, starting_after: params.startingAfter, type: params.type },
      options,
    });
  }

  /** The history, newest first, page after page as you iterate. */
  list(params: EventListParams = {}, options?: RequestOptions): PageIterator<WebhookEvent> {
    return new PageIterator<WebhookEvent>(
      (startingAfter) => this.listPage({ ...params, startingAfter }, options),
      params.startingAfter,
    );
  }

  /** One read of the stream: events after `after`, oldest first, held up to `wait` s. */
  poll(params: EventPollParams = {}, options: RequestOptions = {}): Promise<EventStreamPage> {
    let timeoutMs = options.timeoutMs;
    if (params.wait !== undefined) {
      timeoutMs ??= Math.max(this.transport.timeoutMs, params.wait * 1000 + 10_000);
    }
    return this.transport.request({
      method: "GET",
      path: "/api/v1/events",
      query: { after: params.after, wait: params.wait, limit: params.limit, type: params.type },
      options: { ...options, timeoutMs },
    });
  }

  /**
   * Every new event, oldest first, for as long as you iterate: long polls that continue from
   * each answer's `next_after`, so no event is skipped or repeated.
   *
   * ```ts
   * for await (const event of client.events.follow()) console.log(event.type, event.job?.id);
   * ```
   */
  async *follow(options: EventFollowOptions = {}): AsyncGenerator<WebhookEvent, void, undefined> {
    const wait = options.wait ?? 25;
    let cursor = options.after;
    for (;;) {
      const page = await this.poll(
        {
          after: cursor,
          // Without a cursor the API needs a wait of at least 1 s.
          wait: cursor === undefined ? Math.max(1, wait) : wait,
          limit: options.limit ?? 100,
          type: options.type,
        },
        { signal: options.signal },
      );
      for (const event of page.data) yield event;
      const next = page.next_after ?? page.data[page.data.length - 1]?.id ?? cursor;
      if (next !== undefined && next !== cursor) {
        cursor = next;
        options.onCursor?.(cursor);
      }
    }
  }
}
