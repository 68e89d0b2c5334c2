import type { RequestOptions, Transport } from "./core.js";
import { PageIterator } from "./pagination.js";
import type {
  Delivery,
  LedgerEntry,
  Page,
  WebhookEndpoint,
  WebhookEndpointDeleted,
  WebhookEventType,
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
}
