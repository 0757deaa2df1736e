/**
 * The API's types, from the generated `/openapi.json` types, under short
 * names; and the client's own answer types, written here because the
 * document cannot say what they add: an answer that carries a secret (a
 * tenant secret's value, a connect link, a webhook's signing secret) is
 * handed back with that value wrapped in `Secret`, so it prints as
 * `[SECRET]`. That wrapping is the client's, not the wire's; each is built
 * from its generated wire type (`SecretRead`, `CreatedConnectSession`,
 * `WebhookCreated`).
 */
export {};
