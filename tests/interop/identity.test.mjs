// The official @azure/identity against the certlc emulator: ClientSecretCredential
// through the emulated Entra ID (OpenID discovery, then the v2 token endpoint) and
// ManagedIdentityCredential through the App Service style identity endpoint.
// run-node-test.sh starts the emulator and passes its endpoints document.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ClientSecretCredential, ManagedIdentityCredential } from '@azure/identity';

const endpoints = JSON.parse(readFileSync(process.env.CERTLC_ENDPOINTS, 'utf8'));
const entra = endpoints.services.entra;
const imds = endpoints.services.imds;
const tenant = endpoints.tenant;
const renewer = endpoints.identities.renewer;
const sync = endpoints.identities.sync;
const VAULT = 'https://vault.azure.net';

// The App Service identity header, as the emulator publishes it.
function identityHeader() {
  assert.ok(endpoints.identity_header, 'endpoints document has identity_header');
  return endpoints.identity_header;
}

function claimsOf(jwt) {
  const parts = jwt.split('.');
  assert.equal(parts.length, 3, 'a compact JWS');
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
}

function assertFresh(token) {
  const now = Date.now();
  // expires_in 3599 s; allow the seconds a slow run may take.
  assert.ok(token.expiresOnTimestamp > now + 3500 * 1000, `expiry ${token.expiresOnTimestamp}`);
  assert.ok(token.expiresOnTimestamp < now + 3700 * 1000, `expiry ${token.expiresOnTimestamp}`);
}

test('ClientSecretCredential obtains a Key Vault token from the emulated Entra ID', async () => {
  const cred = new ClientSecretCredential(tenant, renewer.client_id, renewer.client_secret, {
    authorityHost: entra,
    disableInstanceDiscovery: true,
  });
  const token = await cred.getToken(`${VAULT}/.default`);
  assert.ok(token && token.token, 'a token');
  assertFresh(token);
  const c = claimsOf(token.token);
  assert.equal(c.aud, VAULT);
  assert.equal(c.iss, `https://sts.windows.net/${tenant}/`);
  assert.equal(c.tid, tenant);
  assert.equal(c.appid, renewer.client_id);
  assert.ok(c.roles.includes('Key Vault Certificates Officer'), JSON.stringify(c.roles));
});

test('ClientSecretCredential surfaces the AADSTS error for a wrong secret', async () => {
  const cred = new ClientSecretCredential(tenant, renewer.client_id, 'not-the-secret-0123456789', {
    authorityHost: entra,
    disableInstanceDiscovery: true,
  });
  await assert.rejects(cred.getToken(`${VAULT}/.default`), (err) => {
    assert.match(String(err.message), /AADSTS7000215/);
    assert.doesNotMatch(String(err.message), /not-the-secret/);
    return true;
  });
});

test('ManagedIdentityCredential (App Service style) obtains tokens', async (t) => {
  const saved = { ep: process.env.IDENTITY_ENDPOINT, hdr: process.env.IDENTITY_HEADER };
  process.env.IDENTITY_ENDPOINT = `${imds}/msi/token`;
  process.env.IDENTITY_HEADER = identityHeader();
  t.after(() => {
    for (const [k, v] of [['IDENTITY_ENDPOINT', saved.ep], ['IDENTITY_HEADER', saved.hdr]]) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  // System-assigned: the emulator's default managed identity (renewer).
  const system = new ManagedIdentityCredential();
  const t1 = await system.getToken(`${VAULT}/.default`);
  assertFresh(t1);
  let c = claimsOf(t1.token);
  assert.equal(c.aud, VAULT);
  assert.equal(c.appid, renewer.client_id);

  // User-assigned, selected by client id.
  const user = new ManagedIdentityCredential({ clientId: sync.client_id });
  const t2 = await user.getToken('https://storage.azure.com/.default');
  c = claimsOf(t2.token);
  assert.equal(c.aud, 'https://storage.azure.com');
  assert.equal(c.appid, sync.client_id);
  assert.ok(c.roles.includes('Key Vault Secrets User'), JSON.stringify(c.roles));
});
