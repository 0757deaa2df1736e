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
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** What a secret shows instead of itself. */
export const MASK = "[SECRET]";

/** Node's hook for `console.log` and `util.inspect`. */
const inspect = Symbol.for("nodejs.util.inspect.custom");

/** A secret value: prints as `[SECRET]`; `reveal()` returns it. */
export class Secret<T extends JsonValue = JsonValue> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  /** The value itself (a string, or the JSON value that was stored). */
  reveal(): T {
    return this.#value;
  }

  /** The value, which must be a string (a `TypeError` otherwise). */
  revealText(): string {
    if (typeof this.#value !== "string") {
      throw new TypeError(`the secret is a ${typeof this.#value}, not a string: use reveal()`);
    }
    return this.#value;
  }

  toString(): string {
    return MASK;
  }

  toJSON(): string {
    return MASK;
  }

  [inspect](): string {
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
  readonly tenantId: string;
  readonly integration: string;
  readonly #config: Readonly<Record<string, JsonValue>>;

  constructor(tenantId: string, integration: string, config: Record<string, JsonValue>) {
    this.tenantId = tenantId;
    this.integration = integration;
    this.#config = Object.freeze({ ...config });
  }

  /** One field's value, or undefined. */
  get(key: string): JsonValue | undefined {
    return Object.hasOwn(this.#config, key) ? this.#config[key] : undefined;
  }

  /** Whether the view has the field. */
  has(key: string): boolean {
    return Object.hasOwn(this.#config, key);
  }

  /** The field names. */
  keys(): string[] {
    return Object.keys(this.#config);
  }

  /** One field, wrapped so that it keeps not printing itself. */
  secret(key: string): Secret | undefined {
    return this.has(key) ? new Secret(this.#config[key] as JsonValue) : undefined;
  }

  /** Every field, as a plain object (a copy). */
  reveal(): Record<string, JsonValue> {
    return { ...this.#config };
  }

  #masked(): Record<string, string> {
    return Object.fromEntries(Object.keys(this.#config).map((k) => [k, MASK]));
  }

  toJSON(): { tenantId: string; integration: string; config: Record<string, string> } {
    return { tenantId: this.tenantId, integration: this.integration, config: this.#masked() };
  }

  toString(): string {
    return `ResolvedView ${JSON.stringify(this.toJSON())}`;
  }

  [inspect](): string {
    return this.toString();
  }
}
