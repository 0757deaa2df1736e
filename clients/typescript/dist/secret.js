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
/** What a secret shows instead of itself. */
export const MASK = "[SECRET]";
/** Node's hook for `console.log` and `util.inspect`. */
const inspect = Symbol.for("nodejs.util.inspect.custom");
/** A secret value: prints as `[SECRET]`; `reveal()` returns it. */
export class Secret {
    #value;
    constructor(value) {
        this.#value = value;
    }
    /** The value itself (a string, or the JSON value that was stored). */
    reveal() {
        return this.#value;
    }
    /** The value, which must be a string (a `TypeError` otherwise). */
    revealText() {
        if (typeof this.#value !== "string") {
            throw new TypeError(`the secret is a ${typeof this.#value}, not a string: use reveal()`);
        }
        return this.#value;
    }
    toString() {
        return MASK;
    }
    toJSON() {
        return MASK;
    }
    [inspect]() {
        return `Secret(${MASK})`;
    }
}
/**
 * The resolved view of a tenant's connection: defaults, overrides and
 * credentials merged, secrets decrypted. Read a field with `get(key)` (or
 * all of them with `reveal()`); printed or serialised, it shows its field
 * names with every value masked (the view does not say which fields are
 * secret, so none is shown).
 */
export class ResolvedView {
    tenantId;
    integration;
    #config;
    constructor(tenantId, integration, config) {
        this.tenantId = tenantId;
        this.integration = integration;
        this.#config = Object.freeze({ ...config });
    }
    /** One field's value, or undefined. */
    get(key) {
        return Object.hasOwn(this.#config, key) ? this.#config[key] : undefined;
    }
    /** Whether the view has the field. */
    has(key) {
        return Object.hasOwn(this.#config, key);
    }
    /** The field names. */
    keys() {
        return Object.keys(this.#config);
    }
    /** One field, wrapped so that it keeps not printing itself. */
    secret(key) {
        return this.has(key) ? new Secret(this.#config[key]) : undefined;
    }
    /** Every field, as a plain object (a copy). */
    reveal() {
        return { ...this.#config };
    }
    #masked() {
        return Object.fromEntries(Object.keys(this.#config).map((k) => [k, MASK]));
    }
    toJSON() {
        return { tenantId: this.tenantId, integration: this.integration, config: this.#masked() };
    }
    toString() {
        return `ResolvedView ${JSON.stringify(this.toJSON())}`;
    }
    [inspect]() {
        return this.toString();
    }
}
