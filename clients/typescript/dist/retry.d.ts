/**
 * When to try a request again, and after how long.
 *
 * Tessera answers 429 (rate limited, with `Retry-After`) and 503 (a backend
 * is down, or the connection cap was reached) before it does anything, so
 * those are retried for every API call. A connection that could not be made
 * (nothing sent) is retried too. Nothing else is: a timeout may have
 * reached the server.
 */
export declare const RETRY_STATUSES: ReadonlySet<number>;
/**
 * `maxRetries` tries after the first; waits `backoffMs` doubling per retry
 * (with jitter), or exactly what `Retry-After` asks. An answer asking for
 * more than `maxDelayMs` is not waited for: its error is thrown at once.
 */
export interface RetryPolicy {
    maxRetries: number;
    backoffMs: number;
    maxDelayMs: number;
}
/** Milliseconds to wait before retry number `retry` (0-based), or null: give up. */
export declare function retryDelay(policy: RetryPolicy, retry: number, retryAfterSeconds: number | null): number | null;
/** `Retry-After` in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3). */
export declare function parseRetryAfter(value: string | null, nowMs?: number): number | null;
/** Waits `ms`, or rejects when `signal` aborts. */
export declare function sleep(ms: number, signal?: AbortSignal | null): Promise<void>;
