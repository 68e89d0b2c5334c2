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

/** A translation's dub as one language's result (its entry of `output.dubs` without `language`). */
export interface LanguageOutput {
  url: string;
  expires_at: string;
  content_type: string;
  bytes: number;
  [field: string]: unknown;
}

/** One target language of a translation: its own status, dub and error. `queued`/`processing`
 * with its job, then `completed` (`output`), `failed` (`error`, this language only) or
 * `canceled`. */
export interface LanguageResult {
  language: string;
  status: JobStatus;
  output: LanguageOutput | null;
  error: JobError | null;
  completed_at: string | null;
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
  /** Translations: one result per target language, in the order asked for; `null` for the
   * other services. */
  languages: LanguageResult[] | null;
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
  /** What happened, for events not about a job (`endpoint.disabled`, `keys.expiring`,
   * `wallet.low`); `job.language_completed`: the language delivered. */
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

/** `data` of a `job.language_completed` event: the language delivered and its dub. */
export interface LanguageCompletedData {
  language: string;
  output: LanguageOutput;
  completed_at: string;
  [field: string]: unknown;
}

/** `job.language_completed`: one language of a translation was delivered: publish its dub now.
 * `job` is still `processing`, its `languages` as they stand; `job.completed` (or `job.failed`)
 * follows once every language settled. */
export interface JobLanguageCompletedEvent extends EventFields {
  type: "job.language_completed";
  job: Job & { status: "processing" };
  data: LanguageCompletedData;
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

/** `data` of a `wallet.low` event. */
export interface WalletLowData {
  threshold: number;
  /** `default`: 2 h of the last 24 h's spending; `custom`: the account's own. */
  threshold_source: "default" | "custom";
  available: number;
  /** Credits held by jobs still queued or running. */
  reserved: number;
  /** Credits captured over the last hour. */
  hourly_rate: number;
  /** How long the available credits last at the last hour's rate; `null`: nothing spent. */
  runway_hours: number | null;
  crossed_at: string;
  [field: string]: unknown;
}

/** `wallet.low`: the account's live credits went below its low-balance threshold (once per
 * crossing; armed again after a top-up). */
export interface WalletLowEvent extends EventFields {
  type: "wallet.low";
  job: null;
  data: WalletLowData;
}

/** Each event type this SDK knows, and the typed shape of its body. */
export interface EventTypeMap {
  "job.completed": JobCompletedEvent;
  "job.language_completed": JobLanguageCompletedEvent;
  "job.failed": JobFailedEvent;
  "job.canceled": JobCanceledEvent;
  "webhook.test": WebhookTestEvent;
  "endpoint.disabled": EndpointDisabledEvent;
  "keys.expiring": KeysExpiringEvent;
  "wallet.low": WalletLowEvent;
}

export type EventTypeName = keyof EventTypeMap;

/** Any event this SDK has a typed shape for (a union to `switch (event.type)` on). */
export type TypedEvent = EventTypeMap[EventTypeName];

/** Every event type this SDK knows (the keys of `EventTypeMap`). */
export const EVENT_TYPES = [
  "job.completed",
  "job.language_completed",
  "job.failed",
  "job.canceled",
  "webhook.test",
  "endpoint.disabled",
  "keys.expiring",
  "wallet.low",
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

// --- quotes, low balance -------------------------------------------------------------------

/** How long live jobs of the service (and tier) took, created to completed, over `window`;
 * `samples` 0 and both figures `null`: no data. */
export interface QuoteEta {
  /** `tier` (translations, avatars), `mode` (family videos); `null` for music. */
  tier: string | null;
  /** e.g. `1h`. */
  window: string;
  samples: number;
  p50_seconds: number | null;
  p95_seconds: number | null;
  [field: string]: unknown;
}

/** What a create with `input` would reserve, exactly, and the ETA. Cite `id` on a create
 * (`quoteId`) before `expires_at` and it is charged exactly `credits` (once). */
export interface Quote {
  object: "quote";
  /** `quo_…` */
  id: string;
  service: ServiceName;
  /** A test key's quote: 0 credits (sandbox jobs are free). */
  test: boolean;
  credits: number;
  price_version: number;
  /** The input as priced (defaults filled in, a live source's measured `duration_seconds`). */
  input: Record<string, unknown>;
  created_at: string;
  expires_at: string;
  eta: QuoteEta;
  [field: string]: unknown;
}

/** The live wallet against its low-balance threshold (`wallet.low` once per crossing). */
export interface LowBalance {
  object: "low_balance";
  /** Credits; 0: the warning is off. */
  threshold: number;
  threshold_source: "default" | "custom";
  /** What the default would be now. */
  default_threshold: number;
  low: boolean;
  available: number;
  reserved: number;
  consumed_24h: number;
  hourly_rate: number;
  runway_hours: number | null;
  crossed_at: string | null;
  [field: string]: unknown;
}

// --- live progress (GET /api/v1/jobs/{id}/events) -------------------------------------------

/** Live progress events that carry the job (`job.queued` comes only first). */
export type JobStreamJobEventType =
  | "job.queued"
  | "job.started"
  | "job.completed"
  | "job.failed"
  | "job.canceled";

interface StreamEventFields {
  /** The job's event number: resume after it with `lastEventId` (`queue_position` repeats the
   * last job event's). `undefined` if the server sent none. */
  id: number | undefined;
}

/** A status change of the job: `job` is the job as `GET /api/v1/jobs/{id}` answers it then. */
export interface JobStreamStatusEvent extends StreamEventFields {
  type: JobStreamJobEventType;
  job: Job;
}

/** One language of a translation was delivered. */
export interface JobStreamLanguageEvent extends StreamEventFields {
  type: "job.language_completed";
  job: Job;
  language: LanguageCompletedData;
}

/** While the job is queued: 1 is the next live job of its service to start. */
export interface JobStreamQueueEvent extends StreamEventFields {
  type: "queue_position";
  queue_position: number;
  job_id: string;
}

/** One event of a job's live progress (`client.jobs.stream`): switch on `type`. */
export type JobStreamEvent = JobStreamStatusEvent | JobStreamLanguageEvent | JobStreamQueueEvent;

// --- the status page -------------------------------------------------------------------------

export interface StatusPage {
  id: string;
  name: string;
  url: string;
  time_zone: string;
  updated_at: string;
  [field: string]: unknown;
}

export type StatusComponentStatus =
  | "operational"
  | "degraded_performance"
  | "partial_outage"
  | "major_outage"
  | "under_maintenance";

/** A component (Statuspage's fields) with `uptime` (percent per period; `null`: no data). */
export interface StatusComponent {
  id: string;
  name: string;
  status: StatusComponentStatus;
  /** The page's own state, `no_data` included. */
  clipmix_status: string;
  description: string | null;
  position: number;
  group_id: null;
  group: boolean;
  only_show_if_degraded: boolean;
  showcase: boolean;
  page_id: string;
  updated_at: string;
  uptime: Partial<Record<"24h" | "7d" | "30d" | "90d", number | null>>;
  [field: string]: unknown;
}

export interface StatusIncidentUpdate {
  id: string;
  status: string;
  body: string;
  incident_id: string;
  created_at: string;
  updated_at: string;
  display_at: string;
  [field: string]: unknown;
}

/** An incident (`status` investigating … resolved), updates newest first. */
export interface StatusIncident {
  id: string;
  name: string;
  status: "investigating" | "identified" | "monitoring" | "resolved";
  impact: "none" | "minor" | "major" | "critical";
  /** `measured` (opened by the 5-minute evaluations) or `operator` (posted by people). */
  origin: "measured" | "operator";
  created_at: string;
  updated_at: string;
  started_at: string;
  monitoring_at: string | null;
  resolved_at: string | null;
  shortlink: string;
  page_id: string;
  incident_updates: StatusIncidentUpdate[];
  components: { id: string; name: string; status: StatusComponentStatus }[];
  [field: string]: unknown;
}

/** A scheduled maintenance window (shown ahead; not counted as downtime). */
export interface StatusMaintenance {
  id: string;
  name: string;
  status: "scheduled" | "in_progress" | "completed" | "canceled";
  impact: "maintenance";
  created_at: string;
  updated_at: string;
  scheduled_for: string;
  scheduled_until: string;
  started_at: string | null;
  resolved_at: string | null;
  shortlink: string;
  page_id: string;
  incident_updates: StatusIncidentUpdate[];
  components: { id: string; name: string; status: StatusComponentStatus }[];
  [field: string]: unknown;
}

/** `GET /api/status/summary.json` (Statuspage's shape; no key needed). */
export interface StatusSummary {
  page: StatusPage;
  components: StatusComponent[];
  incidents: StatusIncident[];
  scheduled_maintenances: StatusMaintenance[];
  status: { indicator: "none" | "minor" | "major" | "critical" | "maintenance"; description: string };
  [field: string]: unknown;
}

/** A status webhook subscription of the account. */
export interface StatusSubscription {
  object: "status_subscription";
  /** `ssub_…` */
  id: string;
  url: string;
  created_at: string;
  /** Only in the answer of `subscribe()`: the `whsec_` secret, shown this once. */
  secret?: string;
  [field: string]: unknown;
}

export interface StatusSubscriptionDeleted {
  object: "status_subscription";
  id: string;
  deleted: true;
}

/** What a status webhook POSTs (`webhooks.verifyStatusEvent`). `id` is also the `webhook-id`:
 * dedupe on it. */
export interface StatusWebhookEvent {
  id: string;
  type:
    | "status.incident.created"
    | "status.incident.updated"
    | "status.incident.resolved"
    | "status.maintenance.scheduled"
    | "status.maintenance.started"
    | "status.maintenance.completed"
    | "status.maintenance.canceled";
  created_at: string;
  page: StatusPage;
  data: { incident?: StatusIncident | null; maintenance?: StatusMaintenance | null };
  [field: string]: unknown;
}
