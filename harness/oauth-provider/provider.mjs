// A real OAuth 2.0 authorization server for Tessera's tests, started by
// crates/tessera/tests/common/oauth.rs: oauth2-mock-server (real signed JWTs,
// /authorize, /token, /revoke, discovery, JWKS) behind a thin front server
// that adds what a real provider does and the mock does not: client
// authentication, single-use codes bound to redirect_uri, client and PKCE,
// refresh-token rotation, revocation, plus a control API for tests.
//
// Why a front server and not only the mock's event hooks (9.3.0):
// - events are emitted synchronously (EventEmitter.emit) and the response is
//   sent right after, so an async handler is not awaited: a hook cannot delay;
// - /revoke never reads the request body, and beforeRevoke can only set the
//   status code (the body is always empty): no client check, no token to record;
// - the mock checks a code_verifier itself before any hook runs and answers a
//   mismatch with a 400 problem+json body, not {"error":"invalid_grant"}.
// So the front checks token and revoke requests before forwarding them, and
// the hooks shape what the mock issues (codes, expiry, refresh tokens).
//
// Prints one JSON line with its URLs once listening; exits when stdin closes
// (so it never outlives the test process) or on SIGTERM.

import { createServer, request } from 'node:http';
import { createHash, randomUUID } from 'node:crypto';
import { OAuth2Server, Events } from 'oauth2-mock-server';

const CLIENT_ID = process.env.CLIENT_ID ?? 'tessera-test';
const CLIENT_SECRET = process.env.CLIENT_SECRET ?? 'tessera-test-secret';

// What was issued. Kept by POST /reset, so a test may reset the counters after
// its set-up without invalidating the tokens it already holds.
const codes = new Map(); // code -> { challenge, method, redirectUri, clientId, scope }
const refreshTokens = new Map(); // token -> { scope, used, revoked }

// Counters and modes, cleared by POST /reset.
let stats, fails, denyNext, delayMs, expiresIn;
function reset() {
  stats = { authorizationCode: 0, refresh: 0, revoke: 0, failedRefresh: 0, revoked: [], refreshTokensPresented: [] };
  fails = new Map(); // grant_type (or "revoke") -> { status, count, error }
  denyNext = false;
  delayMs = 0;
  expiresIn = 3600;
}
reset();

// --- the mock and its hooks -------------------------------------------------

const mock = new OAuth2Server();
await mock.issuer.keys.generate('RS256'); // as its README says: it signs with this key

mock.service.on(Events.BeforeWellKnownOpenIdConfiguration, ({ body }) => {
  // The mock advertises no client authentication and no refresh grant; this
  // server requires the one and offers the other.
  body.token_endpoint_auth_methods_supported = ['client_secret_basic', 'client_secret_post'];
  body.revocation_endpoint_auth_methods_supported = ['client_secret_basic', 'client_secret_post'];
  body.grant_types_supported = [...body.grant_types_supported, 'refresh_token'];
});

mock.service.on(Events.BeforeAuthorizeRedirect, ({ url }, req) => {
  // The mock redirects to its own `url` object afterwards (replacing it has no
  // effect), so change it in place. It has already added code and state.
  if (denyNext) {
    denyNext = false;
    url.searchParams.delete('code');
    url.searchParams.set('error', 'access_denied');
    return;
  }
  const code = url.searchParams.get('code');
  if (code === null) return; // e.g. unsupported_response_type: nothing issued
  const q = req.query; // parsed by the mock before it emits
  codes.set(code, {
    challenge: q.code_challenge,
    method: q.code_challenge_method ?? 'plain',
    redirectUri: q.redirect_uri,
    clientId: q.client_id,
    scope: q.scope,
  });
});

mock.service.on(Events.BeforeTokenSigning, (token) => {
  // The mock always signs for 3600 s; keep exp in step with expires_in.
  token.payload.exp = token.payload.iat + expiresIn;
  // Real providers never issue the same token twice; without a jti two tokens
  // signed in the same second would be byte-identical.
  token.payload.jti = randomUUID();
});

mock.service.on(Events.BeforeResponse, (response, req) => {
  const { grant_type: grant, scope } = req.body;
  if (response.statusCode !== 200 || (grant !== 'authorization_code' && grant !== 'refresh_token')) return;
  if (grant === 'authorization_code') stats.authorizationCode++;
  else stats.refresh++;
  response.body.expires_in = expiresIn;
  // The mock mints a fresh random refresh_token (a UUID) for both grants:
  // remember it, so only tokens issued here (and once each) can refresh.
  refreshTokens.set(response.body.refresh_token, { scope, used: false, revoked: false });
});

// --- the front server: checks, then forwards to the mock --------------------

const front = createServer(async (req, res) => {
  try {
    const path = new URL(req.url, 'http://front').pathname;
    if (req.method !== 'POST' || (path !== '/token' && path !== '/revoke')) return forward(req, res, null);
    const params = new URLSearchParams((await readBody(req)).toString('utf8'));
    const refusal = path === '/token' ? await checkToken(req, params) : checkRevoke(req, params);
    if (refusal) return send(res, refusal.status, refusal.body, refusal.headers);
    forward(req, res, params);
  } catch (err) {
    send(res, 500, { error: 'server_error', error_description: String(err) });
  }
});

const invalidGrant = { status: 400, body: { error: 'invalid_grant' } };

// A refusal ({status, body}) for a token request, or null to forward it
// (possibly with params adjusted for the mock).
async function checkToken(req, params) {
  const grant = params.get('grant_type');
  if (grant === 'refresh_token') {
    if (params.has('refresh_token')) stats.refreshTokensPresented.push(params.get('refresh_token'));
    // Held before any check, so concurrent refreshes overlap (single-flight tests).
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
  const refusal = injectedFailure(grant) ?? clientRefusal(req, params) ?? grantRefusal(grant, params, clientOf(req, params));
  if (refusal && grant === 'refresh_token') stats.failedRefresh++;
  return refusal;
}

function grantRefusal(grant, params, clientId) {
  if (grant === 'authorization_code') {
    const code = params.get('code');
    const rec = codes.get(code);
    if (!rec || rec.redirectUri !== params.get('redirect_uri') || (rec.clientId !== undefined && rec.clientId !== clientId)) {
      return invalidGrant;
    }
    if (!pkceMatches(rec, params.get('code_verifier'))) return invalidGrant;
    // Used up only by a successful exchange, so a bad attempt cannot burn it.
    codes.delete(code);
    // Checked here; the mock's own check would fail, or answer in its own format.
    params.delete('code_verifier');
    if (rec.scope !== undefined) params.set('scope', rec.scope);
  } else if (grant === 'refresh_token') {
    const rec = refreshTokens.get(params.get('refresh_token'));
    if (!rec || rec.used || rec.revoked) return invalidGrant;
    rec.used = true; // rotation: each refresh token works once
    if (!params.has('scope') && rec.scope !== undefined) params.set('scope', rec.scope);
  }
  return null; // other grants: the mock's own behaviour
}

// RFC 7636 §4.6. No challenge at /authorize: nothing to check.
function pkceMatches(rec, verifier) {
  if (rec.challenge === undefined) return true;
  if (verifier === null || !/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) return false;
  const derived = rec.method === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
  return derived === rec.challenge;
}

// RFC 7009: authenticate, record, then let the mock answer 200 with an empty
// body (as §2.2 asks, also for tokens it does not know).
function checkRevoke(req, params) {
  const refusal = injectedFailure('revoke') ?? clientRefusal(req, params);
  if (refusal) return refusal;
  const token = params.get('token');
  if (!token) return { status: 400, body: { error: 'invalid_request' } };
  stats.revoke++;
  stats.revoked.push({ token_type_hint: params.get('token_type_hint'), tokenPrefix: token.slice(0, 6) });
  const rec = refreshTokens.get(token);
  if (rec) rec.revoked = true;
  return null;
}

function injectedFailure(name) {
  const f = fails.get(name);
  if (!f || f.count <= 0) return null;
  f.count--;
  return { status: f.status, body: { error: f.error } };
}

// RFC 6749 §2.3.1: HTTP Basic (id and secret form-urlencoded, then base64),
// or client_id and client_secret form fields. Returns the client id, or null.
function clientOf(req, params) {
  const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!basic) return params.get('client_id') === CLIENT_ID && params.get('client_secret') === CLIENT_SECRET ? CLIENT_ID : null;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const [id, secret] = [decoded.slice(0, colon), decoded.slice(colon + 1)].map(formDecode);
  return id === CLIENT_ID && secret === CLIENT_SECRET ? id : null;
}

function clientRefusal(req, params) {
  if (clientOf(req, params) !== null) return null;
  return { status: 401, body: { error: 'invalid_client' }, headers: { 'www-authenticate': 'Basic realm="oauth-provider"' } };
}

function formDecode(s) {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

// Sends the request on to the mock: the original body, or `params` re-encoded.
function forward(req, res, params) {
  const headers = { ...req.headers, host: `127.0.0.1:${mock.address().port}` };
  let body = null;
  if (params) {
    body = Buffer.from(params.toString());
    Object.assign(headers, { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length });
    delete headers['transfer-encoding'];
  }
  const upstream = request({ host: '127.0.0.1', port: mock.address().port, method: req.method, path: req.url, headers }, (up) => {
    res.writeHead(up.statusCode, up.headers);
    up.pipe(res);
  });
  upstream.on('error', (err) => send(res, 502, { error: 'server_error', error_description: String(err) }));
  if (body) upstream.end(body);
  else req.pipe(upstream);
}

// --- the control server -----------------------------------------------------

const control = createServer(async (req, res) => {
  try {
    const text = (await readBody(req)).toString('utf8');
    const body = text ? JSON.parse(text) : {};
    switch (`${req.method} ${req.url}`) {
      case 'GET /stats':
        return send(res, 200, stats);
      case 'POST /fail': {
        // {"grant":"refresh_token"|"authorization_code"|"revoke","status":500,"count":3,"error":"server_error"}
        const status = body.status ?? 500;
        const error = body.error ?? (status === 400 ? 'invalid_grant' : status === 401 ? 'invalid_client' : 'server_error');
        fails.set(body.grant, { status, count: body.count ?? 1, error });
        break;
      }
      case 'POST /deny-next':
        denyNext = true;
        break;
      case 'POST /delay':
        delayMs = body.ms ?? 0;
        break;
      case 'POST /expires-in':
        expiresIn = body.seconds ?? 3600;
        break;
      case 'POST /reset':
        reset();
        break;
      default:
        return send(res, 404, { error: 'not_found' });
    }
    send(res, 200, { ok: true });
  } catch (err) {
    send(res, 400, { error: String(err) });
  }
});

// --- helpers and start-up ---------------------------------------------------

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res, status, body, headers = {}) {
  if (res.headersSent) return res.destroy();
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

const frontPort = await listen(front);
const controlPort = await listen(control);
// The mock would call itself http://localhost:<its own port>; it is reached
// through the front, so that is the issuer (in JWTs and discovery).
const issuer = `http://127.0.0.1:${frontPort}`;
mock.issuer.url = issuer;
await mock.start(0, '127.0.0.1');

process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0)).resume();

process.stdout.write(
  `${JSON.stringify({
    issuer,
    authorizeUrl: `${issuer}/authorize`,
    tokenUrl: `${issuer}/token`,
    revokeUrl: `${issuer}/revoke`,
    control: `http://127.0.0.1:${controlPort}`,
  })}\n`,
);
