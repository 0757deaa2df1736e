/**
 * Values that hold secrets and do not print them by accident.
 *
 * Every value Tessera hands out decrypted (a tenant secret, a resolved
 * view's config, a connect link, a webhook's signing secret) comes back
 * wrapped: `String(x)`, template literals, `console.log`, `util.inspect` and
 * `JSON.stringify` show `[SECRET]`; the value is in a private field, there
 * for whoever asks for it by name: `reveal()`.
 *
 * JavaScript cannot wipe memory, so this protects against printing and
 * serialising, not against a heap dump.
 */
/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | {
    [key: string]: JsonValue;
};
/** What a secret shows instead of itself. */
export declare const MASK = "[SECRET]";
/** Node's hook for `console.log` and `util.inspect`. */
declare const inspect: unique symbol;
/** A secret value: prints as `[SECRET]`; `reveal()` returns it. */
export declare class Secret<T extends JsonValue = JsonValue> {
    #private;
    constructor(value: T);
    /** The value itself (a string, or the JSON value that was stored). */
    reveal(): T;
    /** The value, which must be a string (a `TypeError` otherwise). */
    revealText(): string;
    toString(): string;
    toJSON(): string;
    [inspect](): string;
}
/**
 * The resolved view of a tenant's connection: defaults, overrides and
 * credentials merged, secrets decrypted. Read a field with `get(key)` (or
 * all of them with `reveal()`); printed or serialised, it shows its field
 * names with every value masked (the view does not say which fields are
 * secret, so none is shown).
 */
export declare class ResolvedView {
    #private;
    readonly tenantId: string;
    readonly integration: string;
    constructor(tenantId: string, integration: string, config: Record<string, JsonValue>);
    /** One field's value, or undefined. */
    get(key: string): JsonValue | undefined;
    /** Whether the view has the field. */
    has(key: string): boolean;
    /** The field names. */
    keys(): string[];
    /** One field, wrapped so that it keeps not printing itself. */
    secret(key: string): Secret | undefined;
    /** Every field, as a plain object (a copy). */
    reveal(): Record<string, JsonValue>;
    toJSON(): {
        tenantId: string;
        integration: string;
        config: Record<string, string>;
    };
    toString(): string;
    [inspect](): string;
}
export {};
