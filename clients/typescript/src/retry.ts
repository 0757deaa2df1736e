/**
 * When to try a request again, and after how long.
 *
 * Tessera answers 429 (rate limited, with `Retry-After`) and 503 (a backend
 * is down, or the connection cap was reached) before it does anything, so
 * those are retried for every API call. A connection that could not be made
 * (nothing sent) is retried too. Nothing else is: a timeout may have
 * reached the server.
 */

export const RETRY_STATUSES: ReadonlySet<number> = new Set([429, 503]);

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
export function retryDelay(policy: RetryPolicy, retry: number, retryAfterSeconds: number | null): number | null {
  if (retry >= policy.maxRetries) return null;
  if (retryAfterSeconds !== null) {
    const ms = retryAfterSeconds * 1000;
    return ms <= policy.maxDelayMs ? ms : null;
  }
  // "Full jitter" over the upper half, so replicas that failed together spread out.
  return Math.min(policy.maxDelayMs, policy.backoffMs * 2 ** retry) * (0.5 + Math.random() / 2);
}

/** `Retry-After` in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3). */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const when = Date.parse(trimmed);
  return Number.isNaN(when) ? null : Math.max(0, (when - nowMs) / 1000);
}

/** Waits `ms`, or rejects when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
