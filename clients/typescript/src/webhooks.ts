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

import { WebhookVerificationError } from "./errors.js";
import { Secret } from "./secret.js";
import type { components } from "./generated/openapi.js";

/** How far a delivery's timestamp may be from now: five minutes. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

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

const encoder = new TextEncoder();

function bytesOf(body: string | Uint8Array | ArrayBuffer): Uint8Array {
  if (typeof body === "string") return encoder.encode(body);
  return body instanceof Uint8Array ? body : new Uint8Array(body);
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> | null {
  if (hex.length !== 64 || !/^[0-9a-fA-F]+$/.test(hex)) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Checks a delivery and returns its event; rejects with
 * `WebhookVerificationError`. `body` is the request body exactly as
 * received; `signature` the `Tessera-Signature` header's value.
 */
export async function verifyWebhook(
  secret: string | Secret,
  body: string | Uint8Array | ArrayBuffer,
  signature: string | null | undefined,
  options: VerifyOptions = {},
): Promise<WebhookEvent> {
  const key = secret instanceof Secret ? secret.revealText() : secret;
  const raw = bytesOf(body);
  if (!signature) throw new WebhookVerificationError("no Tessera-Signature header");
  let timestamp: string | undefined;
  const candidates: string[] = [];
  for (const part of signature.split(",")) {
    const [name, ...rest] = part.trim().split("=");
    const value = rest.join("=");
    if (name === "t") timestamp = value;
    else if (name === "v1") candidates.push(value);
  }
  if (timestamp === undefined || !/^\d+$/.test(timestamp) || candidates.length === 0) {
    throw new WebhookVerificationError("Tessera-Signature is not t=<seconds>,v1=<hex>");
  }
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const age = (options.now ?? Date.now() / 1000) - Number(timestamp);
  if (Math.abs(age) > tolerance) {
    throw new WebhookVerificationError(
      `the delivery's timestamp is ${Math.abs(age).toFixed(0)} s from now (tolerance ${tolerance} s)`,
    );
  }
  const hmacKey = await crypto.subtle.importKey("raw", encoder.encode(key), { name: "HMAC", hash: "SHA-256" }, false, [
    "verify",
  ]);
  const prefix = encoder.encode(`${timestamp}.`);
  const signed = new Uint8Array(prefix.length + raw.length);
  signed.set(prefix);
  signed.set(raw, prefix.length);
  // Web Crypto's verify compares in constant time; every candidate is checked.
  let matched = false;
  for (const candidate of candidates) {
    const mac = fromHex(candidate);
    if (mac !== null && (await crypto.subtle.verify("HMAC", hmacKey, mac, signed))) matched = true;
  }
  if (!matched) throw new WebhookVerificationError("the signature does not match the body");
  let event: unknown;
  try {
    event = JSON.parse(new TextDecoder().decode(raw));
  } catch {
    throw new WebhookVerificationError("the body is not JSON");
  }
  if (typeof event !== "object" || event === null || Array.isArray(event)) {
    throw new WebhookVerificationError("the body is not a JSON object");
  }
  return event as WebhookEvent;
}
