// A real OpenID Provider for tests/access/test_oidc.py: panva's oidc-provider (OpenID Certified),
// configured as a company's IdP would be for the console: one confidential client (authorization code
// flow, client_secret_post), RS256 ID tokens signed with a key made at start, and a `groups` claim.
//
//   node idp.mjs CONFIG.json   (prints "listening" once it accepts connections)
//
// CONFIG: {port, issuer, client_id, client_secret, redirect_uri, accounts}. `accounts` names a JSON
// file {login: {password, claims}} read again at every sign-in, so a test changes a user's groups by
// rewriting it. The sign-in page is a plain form (POST login, password); consent is granted at once,
// as IdPs do for a first-party application an administrator consented to.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = () => JSON.parse(readFileSync(config.accounts, 'utf8'));
const SCOPE = 'openid email profile groups';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-idp-1', use: 'sig', alg: 'RS256' };

const provider = new Provider(config.issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: [config.redirect_uri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: ['idp-cookie-key-for-tests'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  pkce: { required: () => false },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const account = accounts()[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account.claims }) };
  },
  async loadExistingGrant(ctx) {
    const { client, session } = ctx.oidc;
    const grantId = session.grantIdFor(client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope(SCOPE);
    await grant.save();
    session.grantIdFor(client.clientId, grant.jti);
    return grant;
  },
});

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

const page = (uid, error = '') => `<!doctype html><title>Test IdP</title>${error}
<form method="post" action="/interaction/${uid}"><input name="login"><input name="password" type="password">
<button>Sign in</button></form>`;

async function interaction(req, res, uid) {
  await provider.interactionDetails(req, res); // refuses an unknown or expired interaction
  if (req.method !== 'POST') {
    res.writeHead(200, { 'content-type': 'text/html' }).end(page(uid));
    return;
  }
  const form = await readBody(req);
  const account = accounts()[form.get('login')];
  if (!account || account.password !== form.get('password')) {
    res.writeHead(200, { 'content-type': 'text/html' }).end(page(uid, '<p>Wrong user name or password</p>'));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: form.get('login') } }, { mergeWithLastSubmission: false });
}

const handle = provider.callback();
http.createServer(async (req, res) => {
  const match = req.url.match(/^\/interaction\/([\w-]+)/);
  if (!match) return handle(req, res);
  try {
    await interaction(req, res, match[1]);
  } catch (error) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
  }
}).listen(config.port, '127.0.0.1', () => console.log('listening'));
