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
export declare const MAX_RESOLVED_CACHE_SECONDS = 60;
/** Views by tenant and integration, each with when it was fetched. */
export declare class ResolvedCache {
    #private;
    readonly maxAgeMs: number;
    constructor(maxAgeSeconds: number);
    get(tenant: string, integration: string): ResolvedView | undefined;
    put(tenant: string, integration: string, view: ResolvedView, fetchedAt: number): void;
    drop(tenant: string, integration: string): void;
    clear(): void;
}
