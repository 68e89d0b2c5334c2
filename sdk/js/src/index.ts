/**
 * The ClipMix SDK. `new ClipMix()` for the API; `webhooks.verify()` for deliveries.
 * Responses keep the API's own field names (snake_case), exactly as documented.
 */
import * as webhooks from "./webhooks.js";

export { ClipMix } from "./client.js";
export { webhooks };
export {
  DEFAULT_BASE_URL,
  type ClipMixOptions,
  type FetchFunction,
  type RequestOptions,
  type RetryInfo,
} from "./core.js";
export {
  APIConnectionError,
  APIServerError,
  APITimeoutError,
  AuthenticationError,
  ClipMixError,
  ConflictError,
  IdempotencyKeyInUseError,
  IdempotencyKeyReuseError,
  InsufficientCreditsError,
  InvalidRequestError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitedError,
  WaitTimeoutError,
  WebhookVerificationError,
  type ApiErrorBody,
} from "./errors.js";
export type { EventFollowOptions, EventListParams, EventPollParams } from "./events.js";
export { isTerminal, type JobListParams, type WaitOptions } from "./jobs.js";
export {
  SSEDecoder,
  isFinalStreamEvent,
  type JobStreamOptions,
  type SSEMessage,
} from "./stream.js";
export { Quotes, Status } from "./status.js";
export { PageIterator } from "./pagination.js";
export type {
  AvatarCreateParams,
  CreateOptions,
  FamilyVideoCreateParams,
  MusicCreateParams,
  SandboxScenario,
  TranslationCreateParams,
} from "./services.js";
export type {
  DiagnoseParams,
  Moment,
  PageParams,
  RecoverParams,
  ResumeParams,
  WebhookEndpointParams,
} from "./account.js";
export type * from "./types.js";
export { EVENT_TYPES, TERMINAL_STATUSES, isEventType } from "./types.js";
export type {
  SignOptions,
  VerifyOptions,
  WebhookHeaders,
  WebhookPayload,
  WebhookSecret,
} from "./webhook-core.js";
export { VERSION } from "./version.js";
