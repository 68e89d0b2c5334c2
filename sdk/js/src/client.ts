import { Ledger, WebhookEndpoints } from "./account.js";
import { Transport, type ClipMixOptions, type RequestOptions } from "./core.js";
import { Events } from "./events.js";
import { Jobs } from "./jobs.js";
import {
  ServiceJobs,
  type AvatarCreateParams,
  type FamilyVideoCreateParams,
  type MusicCreateParams,
  type TranslationCreateParams,
} from "./services.js";
import { Quotes, Status } from "./status.js";
import type { Balance, LowBalance, Pricing } from "./types.js";

/**
 * The ClipMix API client.
 *
 * ```ts
 * const client = new ClipMix(); // CLIPMIX_API_KEY, CLIPMIX_BASE_URL from the environment
 * const job = await client.music.create({ prompt: "a lullaby", idempotencyKey: "order-42" });
 * const done = await client.music.wait(job.id);
 * ```
 */
export class ClipMix {
  readonly music: ServiceJobs<MusicCreateParams>;
  readonly translations: ServiceJobs<TranslationCreateParams>;
  readonly familyVideos: ServiceJobs<FamilyVideoCreateParams>;
  readonly avatars: ServiceJobs<AvatarCreateParams>;
  readonly jobs: Jobs;
  readonly ledger: Ledger;
  readonly webhookEndpoint: WebhookEndpoints;
  readonly events: Events;
  readonly quotes: Quotes;
  readonly status: Status;
  private readonly transport: Transport;

  constructor(options: ClipMixOptions = {}) {
    this.transport = new Transport(options);
    this.music = new ServiceJobs(this.transport, "/api/v1/music");
    this.translations = new ServiceJobs(this.transport, "/api/v1/translations");
    this.familyVideos = new ServiceJobs(this.transport, "/api/v1/family-videos");
    this.avatars = new ServiceJobs(this.transport, "/api/v1/avatars");
    this.jobs = new Jobs(this.transport);
    this.ledger = new Ledger(this.transport);
    this.webhookEndpoint = new WebhookEndpoints(this.transport);
    this.events = new Events(this.transport);
    this.quotes = new Quotes(this.transport);
    this.status = new Status(this.transport);
  }

  /** The base URL requests go to. */
  get baseUrl(): string {
    return this.transport.baseUrl;
  }

  /** The account's credits. */
  balance(options?: RequestOptions): Promise<Balance> {
    return this.transport.request({ method: "GET", path: "/api/v1/balance", options });
  }

  /** The live wallet against its low-balance threshold, with the runway. */
  lowBalance(options?: RequestOptions): Promise<LowBalance> {
    return this.transport.request({ method: "GET", path: "/api/v1/balance/low-balance", options });
  }

  /** Warn (`wallet.low`) when the live credits go below `threshold`; `0` turns the warning
   * off, `null` goes back to the default (2 h of the last 24 h's spending). Live keys only. */
  setLowBalance(threshold: number | null, options?: RequestOptions): Promise<LowBalance> {
    return this.transport.request({
      method: "PUT",
      path: "/api/v1/balance/low-balance",
      body: { threshold },
      options,
    });
  }

  /** The price book in force. */
  pricing(options?: RequestOptions): Promise<Pricing> {
    return this.transport.request({ method: "GET", path: "/api/v1/pricing", options });
  }
}
