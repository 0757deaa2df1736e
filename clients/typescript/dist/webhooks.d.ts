/**
 * Checking a webhook delivery as Tessera signs it.
 *
 * Tessera sends `Tessera-Signature: t=<unix seconds>,v1=<hex>` where
 * `<hex>` is HMAC-SHA256, keyed with the webhook's secret as shown at
 * creation (`whsec_...`, its UTF-8 bytes), over `<t>.<raw body>`. The check
 * recomputes it over the body bytes as received (before any JSON parsing),
 * compares in constant time (Web Crypto's `verify`), and refuses a
 * timestamp further than `toleranceSeconds` from now (a replayed delivery).
 */
import { Secret } from "./secret.js";
import type { components } from "./generated/openapi.js";
/** How far a delivery's timestamp may be from now: five minutes. */
export declare const DEFAULT_TOLERANCE_SECONDS = 300;
/**
 * A delivery's body: the generated `WebhookDelivery` (the document's
 * `webhooks` section). `id` is also the `Tessera-Delivery` header, the same
 * on every retry of one event: deduplicate on it.
 */
export type WebhookEvent = components["schemas"]["WebhookDelivery"];
export interface VerifyOptions {
    /** Default 300. */
    toleranceSeconds?: number;
    /** The current time in unix seconds (for tests). */
    now?: number;
}
/**
 * Checks a delivery and returns its event; rejects with
 * `WebhookVerificationError`. `body` is the request body exactly as
 * received; `signature` the `Tessera-Signature` header's value.
 */
export declare function verifyWebhook(secret: string | Secret, body: string | Uint8Array | ArrayBuffer, signature: string | null | undefined, options?: VerifyOptions): Promise<WebhookEvent>;
