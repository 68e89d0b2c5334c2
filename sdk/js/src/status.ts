import type { RequestOptions, Transport } from "./core.js";
import type {
  Page,
  Quote,
  ServiceName,
  StatusSubscription,
  StatusSubscriptionDeleted,
  StatusSummary,
} from "./types.js";

/** `client.quotes`: exact prices of creates, with the service's current ETA. */
export class Quotes {
  constructor(private readonly transport: Transport) {}

  /**
   * `POST /api/v1/quotes`: what creating `input` (the create's wire body, snake_case) with
   * `service` would reserve, to the credit, kept 15 minutes for a create to cite (`quoteId`).
   * Errors name a field as `input.<field>`. Each service's `quote()` is the same by
   * `?dry_run=true` with the create's own parameters.
   */
  create(
    params: { service: ServiceName; input: Record<string, unknown> },
    options?: RequestOptions,
  ): Promise<Quote> {
    return this.transport.request<Quote>({
      method: "POST",
      path: "/api/v1/quotes",
      body: { service: params.service, input: params.input },
      options,
    });
  }
}

/** `client.status`: the status page's summary, and status webhooks for the account. */
export class Status {
  constructor(private readonly transport: Transport) {}

  /** `GET /api/status/summary.json`: components with uptime, open incidents, upcoming and
   * running maintenance, the overall indicator (Statuspage's shape). */
  summary(options?: RequestOptions): Promise<StatusSummary> {
    return this.transport.request({ method: "GET", path: "/api/status/summary.json", options });
  }

  /** POST incident and maintenance changes to `url`, signed (Standard Webhooks) with the
   * answer's `secret`, shown this once (check deliveries with `webhooks.verifyStatusEvent`).
   * At most 10 per account. */
  subscribe(url: string, options?: RequestOptions): Promise<StatusSubscription> {
    return this.transport.request({
      method: "POST",
      path: "/api/v1/status/subscriptions",
      body: { url },
      options,
    });
  }

  /** The account's status webhook subscriptions, newest first (never a secret). */
  subscriptions(options?: RequestOptions): Promise<Page<StatusSubscription>> {
    return this.transport.request({ method: "GET", path: "/api/v1/status/subscriptions", options });
  }

  /** Stops deliveries to a subscription at once (another account's id: `NotFoundError`). */
  unsubscribe(id: string, options?: RequestOptions): Promise<StatusSubscriptionDeleted> {
    return this.transport.request({
      method: "DELETE",
      path: `/api/v1/status/subscriptions/${encodeURIComponent(id)}`,
      options,
    });
  }
}
