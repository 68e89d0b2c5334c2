import type { RequestOptions, Transport } from "./core.js";
import { PageIterator } from "./pagination.js";
import type {
  Delivery,
  EventTypeList,
  LedgerEntry,
  Page,
  WebhookDiagnosis,
  WebhookEndpoint,
  WebhookEndpointDeleted,
  WebhookEventType,
  WebhookRecovery,
  WebhookRedelivery,
  WebhookTestResult,
} from "./types.js";

export interface PageParams {
  /** Items per page, 1–100. */
  limit?: number | undefined;
  /** Start after this id (lists are newest first). */
  startingAfter?: string | undefined;
}

/** `client.ledger`: every credit movement of the account, newest first. */
export class Ledger {
  constructor(private readonly transport: Transport) {}

  listPage(params: PageParams = {}, options?: RequestOptions): Promise<Page<LedgerEntry>> {
    return this.transport.request<Page<LedgerEntry>>({
      method: "GET",
      path: "/api/v1/ledger",
      query: { limit: params.limit, starting_after: params.startingAfter },
      options,
    });
  }

  list(params: PageParams = {}, options?: RequestOptions): PageIterator<LedgerEntry> {
    return new PageIterator<LedgerEntry>(
      (startingAfter) => this.listPage({ ...params, startingAfter }, options),
      params.startingAfter,
    );
  }
}

export interface WebhookEndpointParams {
  /** An http(s) URL on a public address. */
  url: string;
  /** Event types to deliver; all job events when left out. */
  events?: WebhookEventType[] | undefined;
}

export interface ResumeParams {
  /** Send the deliveries held while paused or disabled, in event order (default true);
   * `false` marks them failed instead, for `recover()` to send later. */
  deliverHeld?: boolean | undefined;
}

/** An RFC 3339 string (sent as given), a `Date`, or milliseconds since the epoch. */
export type Moment = string | Date | number;

export interface RecoverParams {
  /** Failed deliveries from this moment on (within the log's retention). */
  since: Moment;
  /** Up to this moment (default: now). */
  until?: Moment | undefined;
}

export interface DiagnoseParams {
  /** The body exactly as your server received it (a string or the raw bytes). */
  body?: string | Uint8Array | ArrayBuffer | undefined;
  /** The headers your server received (a `Headers` object or a record). */
  headers?: Headers | Record<string, string | string[] | undefined> | undefined;
  /** The signature your code computed. */
  signature?: string | undefined;
  /** When it arrived by your clock: RFC 3339, a `Date`, or Unix **seconds** (a number). */
  receivedAt?: string | Date | number | undefined;
}

function rfc3339(value: Moment, name: string): string {
  if (typeof value === "string") {
    if (value.trim() === "") throw new TypeError(`${name} must not be empty`);
    return value;
  }
  const date = value instanceof Date ? value : new Date(value);
  if (typeof value === "boolean" || Number.isNaN(date.getTime())) {
    throw new TypeError(`${name} must be an RFC 3339 string, a Date or epoch milliseconds`);
  }
  return date.toISOString();
}

function text(value: string | Uint8Array | ArrayBuffer): string {
  if (typeof value === "string") return value;
  // Bytes that are not UTF-8 become U+FFFD at the same place: they cannot be what was signed.
  return new TextDecoder().decode(value instanceof ArrayBuffer ? new Uint8Array(value) : value);
}

function headerRecord(headers: NonNullable<DiagnoseParams["headers"]>): Record<string, string> {
  const out: Record<string, string> = {};
  const add = (name: string, value: string) => {
    const key = name.toLowerCase();
    out[key] = key in out ? `${out[key]}, ${value}` : value;
  };
  if (typeof (headers as Headers).get === "function") {
    // A Headers object (fetch, undici, edge runtimes): repeated values arrive joined already.
    (headers as Headers).forEach((value, name) => add(name, value));
    return out;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  for (const [name, value] of Object.entries(record)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) add(name, one);
  }
  return out;
}

/** `client.webhookEndpoint`: the API key's one webhook endpoint and its delivery log. */
export class WebhookEndpoints {
  constructor(private readonly transport: Transport) {}

  /** The endpoint (never its secret); `NotFoundError` (`webhook_not_configured`) if none. */
  get(options?: RequestOptions): Promise<WebhookEndpoint> {
    return this.transport.request({ method: "GET", path: "/api/v1/webhook", options });
  }

  /** Creates the endpoint (the answer carries `secret`, shown this once) or changes it. */
  set(params: WebhookEndpointParams, options?: RequestOptions): Promise<WebhookEndpoint> {
    const body: Record<string, unknown> = { url: params.url };
    if (params.events !== undefined) body["events"] = params.events;
    return this.transport.request({ method: "PUT", path: "/api/v1/webhook", body, options });
  }

  /** Removes the endpoint; queued deliveries are not sent. */
  delete(options?: RequestOptions): Promise<WebhookEndpointDeleted> {
    return this.transport.request({ method: "DELETE", path: "/api/v1/webhook", options });
  }

  /** A new signing secret (in `secret`, shown once); the old one keeps signing for 24 h. */
  rotateSecret(options?: RequestOptions): Promise<WebhookEndpoint & { secret: string }> {
    return this.transport.request({
      method: "POST",
      path: "/api/v1/webhook/rotate-secret",
      options,
    });
  }

  /** Sends a `webhook.test` event now and answers the attempt's outcome. */
  test(options?: RequestOptions): Promise<WebhookTestResult> {
    return this.transport.request({ method: "POST", path: "/api/v1/webhook/test", options });
  }

  /** One page of the delivery log (the last 100 attempts), newest first. */
  deliveriesPage(params: PageParams = {}, options?: RequestOptions): Promise<Page<Delivery>> {
    return this.transport.request({
      method: "GET",
      path: "/api/v1/webhook/deliveries",
      query: { limit: params.limit, starting_after: params.startingAfter },
      options,
    });
  }

  /** The delivery log, page after page as you iterate. */
  deliveries(params: PageParams = {}, options?: RequestOptions): PageIterator<Delivery> {
    return new PageIterator<Delivery>(
      (startingAfter) => this.deliveriesPage({ ...params, startingAfter }, options),
      params.startingAfter,
    );
  }

  /** Sends a logged delivery's event again (same event id), with the full retry schedule. */
  redeliver(deliveryId: string, options?: RequestOptions): Promise<WebhookRedelivery> {
    return this.transport.request({
      method: "POST",
      path: `/api/v1/webhook/deliveries/${encodeURIComponent(deliveryId)}/redeliver`,
      options,
    });
  }

  /** Stops deliveries; events keep queuing (`held_events`) until `resume()`. Idempotent. */
  pause(options?: RequestOptions): Promise<WebhookEndpoint> {
    return this.transport.request({ method: "POST", path: "/api/v1/webhook/pause", options });
  }

  /**
   * Enables a paused or disabled endpoint. The deliveries held meanwhile go out in event
   * order (their count in `released`), unless `deliverHeld: false`.
   */
  async resume(
    params: ResumeParams = {},
    options?: RequestOptions,
  ): Promise<WebhookEndpoint & { released: number }> {
    const deliverHeld = params.deliverHeld ?? true;
    if (typeof deliverHeld !== "boolean") throw new TypeError("deliverHeld must be a boolean");
    return this.transport.request({
      method: "POST",
      path: "/api/v1/webhook/resume",
      body: { deliver_held: deliverHeld },
      options,
    });
  }

  /**
   * Sends every failed delivery since `since` (up to `until`) again, in order, once each,
   * with the original event ids. Repeating the call with the same `idempotencyKey` answers
   * the same recovery.
   */
  async recover(params: RecoverParams, options?: RequestOptions): Promise<WebhookRecovery> {
    const body: Record<string, string> = { since: rfc3339(params.since, "since") };
    if (params.until !== undefined) body["until"] = rfc3339(params.until, "until");
    return this.transport.request({
      method: "POST",
      path: "/api/v1/webhook/recover",
      body,
      options,
    });
  }

  /** One delivery attempt with the exact headers sent and the exact body signed. */
  getDelivery(deliveryId: string, options?: RequestOptions): Promise<Delivery> {
    return this.transport.request({
      method: "GET",
      path: `/api/v1/webhook/deliveries/${encodeURIComponent(deliveryId)}`,
      options,
    });
  }

  /**
   * The signature doctor: give what your server received (`body`, `headers`), what your code
   * computed (`signature`) and your clock (`receivedAt`); answers which check fails and the
   * likely cause. Needs `body` or `signature` (else it rejects with a `TypeError`, unsent).
   */
  async diagnose(
    deliveryId: string,
    params: DiagnoseParams,
    options?: RequestOptions,
  ): Promise<WebhookDiagnosis> {
    if (params.body === undefined && params.signature === undefined) {
      throw new TypeError("diagnose needs body (as your server received it), signature, or both");
    }
    const body: Record<string, unknown> = {};
    if (params.body !== undefined) body["body"] = text(params.body);
    if (params.headers !== undefined) body["headers"] = headerRecord(params.headers);
    if (params.signature !== undefined) body["signature"] = params.signature;
    if (params.receivedAt !== undefined) {
      body["received_at"] =
        typeof params.receivedAt === "number"
          ? params.receivedAt
          : rfc3339(params.receivedAt, "receivedAt");
    }
    return this.transport.request({
      method: "POST",
      path: `/api/v1/webhook/deliveries/${encodeURIComponent(deliveryId)}/diagnose`,
      body,
      options,
    });
  }

  /** The event catalog: every event type with the JSON Schema of its body. */
  eventTypes(options?: RequestOptions): Promise<EventTypeList> {
    return this.transport.request({ method: "GET", path: "/api/v1/event-types", options });
  }
}
