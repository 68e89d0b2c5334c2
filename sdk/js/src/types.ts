/**
 * Response shapes. Field names are the API's own (snake_case), exactly as documented and as
 * webhooks deliver them, so a job read here and a job in a webhook event look the same.
 * The API only ever adds fields within v1: treat unknown fields, statuses and codes as opaque.
 */

export type ServiceName = "music" | "translations" | "family_videos" | "avatars";

export type JobStatus = "queued" | "processing" | "completed" | "failed" | "canceled";

/** Statuses after which a job never changes again. */
export const TERMINAL_STATUSES: readonly string[] = ["completed", "failed", "canceled"];

/** A result file behind a signed, expiring link. */
export interface Artifact {
  url: string;
  /** RFC 3339 UTC: the link stops working then; `GET` the job again for a fresh one. */
  expires_at: string;
  content_type: string;
  bytes: number;
  duration_seconds?: number | null;
  [field: string]: unknown;
}

/** A translation's dubbed video, one per target language. */
export interface Dub extends Artifact {
  language: string;
}

export interface JobOutput {
  /** music, family videos, avatars */
  artifacts?: Artifact[];
  /** translations */
  dubs?: Dub[];
  [field: string]: unknown;
}

export interface JobError {
  code: string;
  message: string;
  [field: string]: unknown;
}

/** The one job shape of every create, read, list and webhook event. */
export interface Job {
  id: string;
  object: "job";
  service: ServiceName;
  status: JobStatus;
  /** True for sandbox jobs (made with a test key: sk_test_ or rk_test_). */
  test: boolean;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  /** 0 to 1 */
  progress: number;
  /** The create body with the defaults filled in. */
  input: Record<string, unknown>;
  output: JobOutput | null;
  error: JobError | null;
  cost_credits: number;
  [field: string]: unknown;
}

/** One page of a list call; page on with `starting_after` = the last item's id. */
export interface Page<T> {
  object: "list";
  data: T[];
  has_more: boolean;
}

export interface Balance {
  object: "balance";
  available: number;
  reserved: number;
  lifetime_purchased: number;
  lifetime_bonus: number;
  paid_remaining: number;
  bonus_remaining: number;
  live_enabled: boolean;
  [field: string]: unknown;
}

export interface LedgerEntry {
  object: "ledger_entry";
  id: string;
  type: "purchase" | "reservation" | "capture" | "release";
  amount: number;
  available_change: number;
  reserved_change: number;
  available_after: number;
  reserved_after: number;
  paid_amount: number;
  bonus_amount: number;
  job_id: string | null;
  reference: string | null;
  created_at: string;
  [field: string]: unknown;
}

export interface Price {
  service: ServiceName;
  item: string;
  unit: "second" | "started_minute_per_language" | "video";
  credits: number;
  description: string;
  [field: string]: unknown;
}

export interface TopUpBonus {
  min_usd: number;
  bonus_percent: number;
}

export interface Pricing {
  object: "price_book";
  version: number;
  currency: "credits";
  credits_per_usd: number;
  effective_at: string;
  prices: Price[];
  top_up_bonuses: TopUpBonus[];
  rounding: string[];
  [field: string]: unknown;
}

/** The job event types an endpoint may subscribe to (`keys.expiring` is always delivered). */
export type WebhookEventType = "job.completed" | "job.failed" | "job.canceled";

/** `enabled`: deliveries go out; `paused`: by you (`pause()`); `disabled`: by ClipMix, see
 * `disabled_reason`. Paused and disabled endpoints keep queuing events (`held_events`). */
export type WebhookEndpointStatus = "enabled" | "paused" | "disabled";

export interface WebhookEndpoint {
  object: "webhook_endpoint";
  url: string;
  events: string[];
  api_key_id: string;
  created_at: string;
  updated_at: string;
  previous_secret_expires_at: string | null;
  /** Only in the answer of the first `set()` and of `rotateSecret()`: store it then. */
  secret?: string;
  status: WebhookEndpointStatus;
  /** `gone`: the receiver answered 410; `failing`: every attempt failed for the window. */
  disabled_reason: "gone" | "failing" | null;
  disabled_at: string | null;
  /** The first failed attempt since the last success. */
  failing_since: string | null;
  /** Deliveries queued while the endpoint is not enabled. */
  held_events: number;
  /** Only in the answer of `resume()`: the held deliveries released, in event order. */
  released?: number;
  [field: string]: unknown;
}

export interface WebhookEndpointDeleted {
  object: "webhook_endpoint";
  api_key_id: string;
  deleted: true;
}

/** One attempt in the key's delivery log (the last 100 attempts). */
export interface Delivery {
  object: "webhook_delivery";
  id: string;
  event_id: string;
  event_type: string;
  attempt: number;
  trigger: "first" | "retry" | "test" | "replay";
  attempted_at: string;
  url: string;
  resolved_ip: string | null;
  status_code: number | null;
  error: string | null;
  succeeded: boolean;
  latency_ms: number | null;
  response_head: string | null;
  next_attempt_at: string | null;
  /** `getDelivery()` only: the exact request headers sent. */
  request_headers?: Record<string, string>;
  /** `getDelivery()` only: the exact body bytes signed, as UTF-8. */
  request_body?: string;
  [field: string]: unknown;
}

export interface WebhookTestResult {
  object: "webhook_test_result";
  event_id: string;
  succeeded: boolean;
  delivery: Delivery;
}

export interface WebhookRedelivery {
  object: "webhook_redelivery";
  event_id: string;
  event_type: string;
  status: "pending";
}

/** `recover()`: every failed delivery since `since` (up to `until`) is sent again, in order,
 * once each, with its original event id. */
export interface WebhookRecovery {
  object: "webhook_recovery";
  id: string;
  since: string;
  until: string | null;
  /** `queued` when answered, `running` while some are still being delivered, `completed`. */
  status: "queued" | "running" | "completed";
  /** How many failed deliveries were queued again. */
  queued: number;
  created_at: string;
  [field: string]: unknown;
}

export type DiagnosisCause =
  | "body_reencoded"
  | "wrong_secret"
  | "previous_secret"
  | "timestamp_outside_tolerance"
  | "header_stripped";

export interface DiagnosisCheck {
  name: "headers" | "body" | "secret" | "timestamp";
  ok: boolean;
  /** Not checked: what it needs was not given. */
  skipped: boolean;
  detail: string;
  [field: string]: unknown;
}

/** Where the body you received first differs from the bytes ClipMix signed. */
export interface FirstDifference {
  /** Bytes from the start of the body. */
  offset: number;
  /** What was signed, from `offset` on (a few bytes). */
  expected: string;
  /** What you gave, from `offset` on. */
  received: string;
  /** e.g. `"0x2c"`; `null` past the end. */
  expected_byte: string | null;
  received_byte: string | null;
  /** The bytes just before `offset` (the same on both sides). */
  before: string;
  expected_length: number;
  received_length: number;
  [field: string]: unknown;
}

/** The signature doctor's answer (`diagnose()`). */
export interface WebhookDiagnosis {
  object: "webhook_diagnosis";
  delivery_id: string;
  verified: boolean;
  /** The likely cause when it does not verify (treat unknown values as opaque). */
  cause: DiagnosisCause | null;
  /** One human sentence. */
  message: string;
  checks: DiagnosisCheck[];
  first_difference: FirstDifference | null;
  [field: string]: unknown;
}

/** One entry of the event catalog (`eventTypes()`): a type and the JSON Schema of its body. */
export interface EventType {
  object: "event_type";
  type: string;
  description: string;
  schema: Record<string, unknown>;
  [field: string]: unknown;
}

/** `GET /api/v1/event-types`: the whole catalog, in one answer. */
export interface EventTypeList {
  object: "list";
  data: EventType[];
}

/** The JSON body of a webhook delivery (and of `GET /api/v1/events`). `id` is stable across
 * retries: dedupe on it. Narrow it to its typed shape with `isEventType(event, "…")`. */
export interface WebhookEvent {
  id: string;
  object: "event";
  type: EventTypeName;
  created: string;
  test: boolean;
  api_key_id: string;
  /** The job as `GET /api/v1/jobs/{id}` answers it; `null` for events not about a job. */
  job: Job | null;
  /** Events not about a job (`endpoint.disabled`, `keys.expiring`): what happened. */
  data?: Record<string, unknown> | null;
  [field: string]: unknown;
}

/** The fields every event has (each typed event below adds `type`, `job` and `data`). */
interface EventFields {
  id: string;
  object: "event";
  created: string;
  /** True for events of test keys and for `webhook.test`. */
  test: boolean;
  api_key_id: string;
  [field: string]: unknown;
}

/** `job.completed`: the job finished; its results are links in `job.output`. */
export interface JobCompletedEvent extends EventFields {
  type: "job.completed";
  job: Job & { status: "completed" };
}

/** `job.failed`: `job.error` says why; its reserved credits were released. */
export interface JobFailedEvent extends EventFields {
  type: "job.failed";
  job: Job & { status: "failed" };
}

/** `job.canceled`: canceled before it settled; its reserved credits were released. */
export interface JobCanceledEvent extends EventFields {
  type: "job.canceled";
  job: Job & { status: "canceled" };
}

/** `webhook.test`: sent when asked for (`webhookEndpoint.test()`). */
export interface WebhookTestEvent extends EventFields {
  type: "webhook.test";
  test: true;
  job: null;
}

/** `data` of an `endpoint.disabled` event. */
export interface EndpointDisabledData {
  url: string;
  /** `gone`: the receiver answered 410; `failing`: every attempt failed for the window. */
  reason: "gone" | "failing";
  disabled_at: string;
  failing_since: string | null;
  [field: string]: unknown;
}

/** `endpoint.disabled`: the key's endpoint was disabled (in the events stream, never POSTed to
 * the endpoint); events keep queuing until `resume()`. */
export interface EndpointDisabledEvent extends EventFields {
  type: "endpoint.disabled";
  job: null;
  data: EndpointDisabledData;
}

/** `data` of a `keys.expiring` event. */
export interface KeyExpiringData {
  /** e.g. `sk_live_…a1b2`, never the secret. */
  key_display: string;
  name: string | null;
  expires_at: string;
  [field: string]: unknown;
}

/** `keys.expiring`: the key expires within 7 days: roll it before then. */
export interface KeysExpiringEvent extends EventFields {
  type: "keys.expiring";
  job: null;
  data: KeyExpiringData;
}

/** Each event type this SDK knows, and the typed shape of its body. */
export interface EventTypeMap {
  "job.completed": JobCompletedEvent;
  "job.failed": JobFailedEvent;
  "job.canceled": JobCanceledEvent;
  "webhook.test": WebhookTestEvent;
  "endpoint.disabled": EndpointDisabledEvent;
  "keys.expiring": KeysExpiringEvent;
}

export type EventTypeName = keyof EventTypeMap;

/** Any event this SDK has a typed shape for (a union to `switch (event.type)` on). */
export type TypedEvent = EventTypeMap[EventTypeName];

/** Every event type this SDK knows (the keys of `EventTypeMap`). */
export const EVENT_TYPES = [
  "job.completed",
  "job.failed",
  "job.canceled",
  "webhook.test",
  "endpoint.disabled",
  "keys.expiring",
] as const satisfies readonly EventTypeName[];

// Compile-time: EVENT_TYPES lists every key of EventTypeMap (a key added there and not here,
// or the other way round, fails the build).
type _Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _everyEventType: _Same<(typeof EVENT_TYPES)[number], EventTypeName> = true;
void _everyEventType;

/**
 * Narrows an event (from `webhooks.verify`, `client.events`, …) to the typed shape of `type`:
 *
 * ```ts
 * if (isEventType(event, "endpoint.disabled")) console.log(event.data.reason);
 * ```
 */
export function isEventType<T extends EventTypeName>(
  event: { type: string },
  type: T,
): event is EventTypeMap[T] {
  return event.type === type;
}

/** A page of `GET /api/v1/events`: the history (`client.events.listPage`, newest first) or a
 * read of the stream (`client.events.poll`, oldest first, with the cursor to continue from). */
export interface EventPage extends Page<WebhookEvent> {
  url: "/api/v1/events";
  /** Stream reads: pass as `after` next time: gap-free, present even when `data` is empty. */
  next_after?: string;
}

/** A read of the event stream (`client.events.poll`): an `EventPage`. */
export type EventStreamPage = EventPage;
