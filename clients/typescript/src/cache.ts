/**
 * The optional in-process cache of resolved views.
 *
 * Off unless asked for (`resolvedCacheSeconds`). A cached view is served
 * for at most that many seconds after it was fetched, and never more than
 * `MAX_RESOLVED_CACHE_SECONDS`: Tessera itself may see a change (a token
 * refreshed, a secret rotated, a connection revoked) at any moment, and this
 * cache does not hear of it. Writes made through the same client object
 * (credentials stored or revoked) drop that connection's entry at once.
 *
 * A cached read is not a read of Tessera, so it is not in Tessera's audit
 * log: the audit shows one read per fetch, not per use.
 */

import type { ResolvedView } from "./secret.js";

/** The longest a resolved view may be cached, in seconds. */
export const MAX_RESOLVED_CACHE_SECONDS = 60;

const MAX_ENTRIES = 1024;

/** Views by tenant and integration, each with when it was fetched. */
export class ResolvedCache {
  readonly maxAgeMs: number;
  readonly #entries = new Map<string, { fetchedAt: number; view: ResolvedView }>();

  constructor(maxAgeSeconds: number) {
    if (!(maxAgeSeconds >= 0 && maxAgeSeconds <= MAX_RESOLVED_CACHE_SECONDS)) {
      throw new RangeError(`resolvedCacheSeconds must be between 0 and ${MAX_RESOLVED_CACHE_SECONDS}`);
    }
    this.maxAgeMs = maxAgeSeconds * 1000;
  }

  get(tenant: string, integration: string): ResolvedView | undefined {
    if (this.maxAgeMs === 0) return undefined;
    const key = JSON.stringify([tenant, integration]);
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (performance.now() - entry.fetchedAt >= this.maxAgeMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.view;
  }

  put(tenant: string, integration: string, view: ResolvedView, fetchedAt: number): void {
    if (this.maxAgeMs === 0) return;
    const key = JSON.stringify([tenant, integration]);
    this.#entries.delete(key);
    this.#entries.set(key, { fetchedAt, view });
    while (this.#entries.size > MAX_ENTRIES) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  drop(tenant: string, integration: string): void {
    this.#entries.delete(JSON.stringify([tenant, integration]));
  }

  clear(): void {
    this.#entries.clear();
  }
}
