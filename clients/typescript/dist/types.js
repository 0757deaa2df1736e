/**
 * The API's types, from the generated `/openapi.json` types, under short
 * names; and the few answers the document describes in words only (no
 * schema yet), typed here once from the server's own structs.
 */
export {};
