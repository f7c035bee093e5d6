// The official @azure/keyvault-certificates and @azure/keyvault-secrets against
// the certlc emulator's vault: the certlc renewal flow (create with issuer
// Unknown, read the CSR, sign it with a throwaway CA, merge), reads, tags, the
// secret behind the certificate, RBAC refusals, and a Self-issued create.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateClient } from '@azure/keyvault-certificates';
import { SecretClient } from '@azure/keyvault-secrets';
import { ClientSecretCredential } from '@azure/identity';

const endpoints = JSON.parse(readFileSync(process.env.CERTLC_ENDPOINTS, 'utf8'));
const VAULT = 'certlc';
// The emulator runs on 127.0.0.1 but answers resource https://vault.azure.net.
const CLIENT_OPTS = { disableChallengeResourceVerification: true };
// Runs are independent of what other tests left in the vault.
const RUN = Date.now().toString(36);

function vaultUrl() {
  const kv = endpoints.services.keyvault;
  assert.ok(kv && kv[VAULT], `the endpoints document names vault '${VAULT}'`);
  return kv[VAULT];
}

function credential(identity) {
  const id = endpoints.identities[identity];
  assert.ok(id, `identity ${identity}`);
  return new ClientSecretCredential(endpoints.tenant, id.client_id, id.client_secret, {
    authorityHost: endpoints.services.entra,
    disableInstanceDiscovery: true,
  });
}

const certs = (identity) => new CertificateClient(vaultUrl(), credential(identity), CLIENT_OPTS);
const secrets = (identity) => new SecretClient(vaultUrl(), credential(identity), CLIENT_OPTS);

// A throwaway issuing CA in a temp dir; CSRs are signed with the openssl CLI
// (node:crypto cannot sign a CSR). Extensions requested in the CSR are copied.
let dir;
function openssl(...args) {
  return execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'certlc-kv-interop-'));
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=certlc interop test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Signs a DER CSR; returns [leaf DER, CA DER].
function signCsr(csrDer, tag) {
  writeFileSync(join(dir, `${tag}.csr.der`), csrDer);
  openssl('req', '-inform', 'DER', '-in', `${tag}.csr.der`, '-verify', '-noout');
  openssl('x509', '-req', '-inform', 'DER', '-in', `${tag}.csr.der`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-CAcreateserial', '-days', '30', '-copy_extensions', 'copy', '-outform', 'DER', '-out', `${tag}.der`);
  const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
  return [readFileSync(join(dir, `${tag}.der`)), ca.raw];
}

// The CSR's subject and requested extensions, as openssl prints them.
function csrText(csrDer, tag) {
  writeFileSync(join(dir, `${tag}.text.der`), csrDer);
  return openssl('req', '-inform', 'DER', '-in', `${tag}.text.der`, '-noout', '-text').toString('utf8');
}

function csrPublicKeyPem(csrDer, tag) {
  writeFileSync(join(dir, `${tag}.pub.der`), csrDer);
  return openssl('req', '-inform', 'DER', '-in', `${tag}.pub.der`, '-noout', '-pubkey').toString('utf8');
}

const unknownPolicy = (cn, keyProps) => ({
  issuerName: 'Unknown',
  subject: `CN=${cn}, O=Contoso`,
  subjectAlternativeNames: { dnsNames: [cn, `www.${cn}`], emails: ['ops@contoso.com'] },
  enhancedKeyUsage: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
  keyUsage: ['digitalSignature', 'keyEncipherment'],
  validityInMonths: 12,
  exportable: true,
  reuseKey: false,
  contentType: 'application/x-pkcs12',
  ...keyProps,
});

async function renew(client, name, keyProps, checkCsr) {
  const cn = `${name}.contoso.com`;
  const create = await client.beginCreateCertificate(name, unknownPolicy(cn, keyProps), {
    tags: { recipient: 'ops@contoso.com' },
  });
  const created = create.getOperationState();
  assert.equal(created.isStarted, true);
  assert.ok(!created.isCompleted, 'issuer Unknown stays pending until merge');

  const poller = await client.getCertificateOperation(name);
  const op = poller.getOperationState().certificateOperation;
  assert.equal(op.status, 'inProgress');
  assert.equal(op.issuerName, 'Unknown');
  assert.ok(op.csr instanceof Uint8Array && op.csr.length > 100, 'the operation carries a CSR');
  const text = csrText(op.csr, name);
  checkCsr(text);
  assert.match(text, new RegExp(`CN\\s*=\\s*${cn.replace(/\./g, '\\.')}`));
  assert.match(text, /O\s*=\s*Contoso/);
  assert.match(text, new RegExp(`DNS:${cn.replace(/\./g, '\\.')}`));
  assert.match(text, /DNS:www\./);
  assert.match(text, /email:ops@contoso\.com/);
  assert.match(text, /TLS Web Server Authentication/);
  assert.match(text, /TLS Web Client Authentication/);

  const [leaf, ca] = signCsr(op.csr, name);
  const merged = await client.mergeCertificate(name, [leaf, ca]);
  assert.equal(merged.name, name);
  assert.ok(/^[0-9a-f]{32}$/.test(merged.properties.version), merged.properties.version);
  assert.deepEqual(Buffer.from(merged.cer), leaf, 'cer is the merged leaf');
  const x5t = Buffer.from(new X509Certificate(leaf).fingerprint.replace(/:/g, ''), 'hex');
  assert.deepEqual(Buffer.from(merged.properties.x509Thumbprint), x5t);
  assert.equal(
    createPublicKey(csrPublicKeyPem(op.csr, name)).export({ type: 'spki', format: 'der' }).toString('hex'),
    new X509Certificate(leaf).publicKey.export({ type: 'spki', format: 'der' }).toString('hex'),
  );

  const done = await client.getCertificateOperation(name);
  assert.equal(done.getOperationState().certificateOperation.status, 'completed');
  return { merged, leaf };
}

test('issuer Unknown: create, CSR, sign, merge, get, list, tags (EC P-256)', async () => {
  const client = certs('renewer');
  const name = `sdk-ec-${RUN}`;
  const { merged, leaf } = await renew(client, name, { keyType: 'EC', keyCurveName: 'P-256' }, (text) => {
    assert.match(text, /id-ecPublicKey/);
    assert.match(text, /P-256|prime256v1/);
  });

  const got = await client.getCertificate(name);
  assert.equal(got.properties.version, merged.properties.version);
  assert.deepEqual(Buffer.from(got.cer), leaf);
  assert.equal(got.properties.enabled, true);
  assert.equal(got.properties.tags.recipient, 'ops@contoso.com', 'create tags carried to the version');
  const leafCert = new X509Certificate(leaf);
  assert.equal(got.properties.expiresOn.getTime(), Date.parse(leafCert.validTo));
  assert.equal(got.properties.notBefore.getTime(), Date.parse(leafCert.validFrom));
  assert.equal(got.policy.issuerName, 'Unknown');
  assert.equal(got.policy.keyType, 'EC');
  assert.equal(got.policy.keyCurveName, 'P-256');
  assert.equal(got.policy.subject, `CN=${name}.contoso.com, O=Contoso`);
  assert.deepEqual(got.policy.subjectAlternativeNames.dnsNames, [`${name}.contoso.com`, `www.${name}.contoso.com`]);
  assert.deepEqual(got.policy.enhancedKeyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.equal(got.policy.validityInMonths, 12);
  assert.equal(got.policy.contentType, 'application/x-pkcs12');

  const byVersion = await client.getCertificateVersion(name, merged.properties.version);
  assert.deepEqual(Buffer.from(byVersion.cer), leaf);

  const listed = [];
  for await (const p of client.listPropertiesOfCertificates()) listed.push(p);
  const mine = listed.find((p) => p.name === name);
  assert.ok(mine, `listed: ${listed.map((p) => p.name).join(',')}`);
  assert.deepEqual(Buffer.from(mine.x509Thumbprint), Buffer.from(got.properties.x509Thumbprint));
  assert.equal(mine.version, undefined, 'list items carry versionless ids');

  const versions = [];
  for await (const p of client.listPropertiesOfCertificateVersions(name)) versions.push(p.version);
  assert.deepEqual(versions, [merged.properties.version]);

  const updated = await client.updateCertificateProperties(name, '', {
    tags: { owner: 'pki-team', env: 'interop' },
  });
  assert.deepEqual(updated.properties.tags, { owner: 'pki-team', env: 'interop' });
  const reread = await client.getCertificate(name);
  assert.deepEqual(reread.properties.tags, { owner: 'pki-team', env: 'interop' });

  const policy = await client.getCertificatePolicy(name);
  assert.equal(policy.issuerName, 'Unknown');
});

test('issuer Unknown with RSA-2048; the secret is for sync, not for the renewer', async () => {
  const client = certs('renewer');
  const name = `sdk-rsa-${RUN}`;
  const { leaf } = await renew(client, name, { keyType: 'RSA', keySize: 2048 }, (text) => {
    assert.match(text, /rsaEncryption/);
    assert.match(text, /2048 bit/);
  });

  const secret = await secrets('sync').getSecret(name);
  assert.equal(secret.properties.contentType, 'application/x-pkcs12');
  assert.equal(secret.properties.managed, true);
  const kid = secret.properties.certificateKeyId;
  assert.ok(kid && kid.includes(`/keys/${name}/`), kid);
  // A PFX with an empty password holding the key and the merged leaf.
  writeFileSync(join(dir, 'secret.pfx'), Buffer.from(secret.value, 'base64'));
  const pem = openssl('pkcs12', '-in', 'secret.pfx', '-passin', 'pass:', '-nodes').toString('utf8');
  assert.match(pem, /-----BEGIN PRIVATE KEY-----/);
  const leafPem = new X509Certificate(leaf).toString().trim();
  assert.ok(pem.includes(leafPem), 'the PFX holds the merged leaf');

  await assert.rejects(secrets('renewer').getSecret(name), (e) => {
    assert.equal(e.statusCode, 403);
    assert.equal(e.code, 'Forbidden');
    assert.doesNotMatch(String(e.message), /PRIVATE KEY/);
    return true;
  });
  await assert.rejects(certs('sync').beginCreateCertificate(`sdk-sync-${RUN}`, unknownPolicy('x.contoso.com', {
    keyType: 'EC', keyCurveName: 'P-256' })), (e) => {
    assert.equal(e.statusCode, 403);
    return true;
  });
});

test('merge refuses a chain for another key and the operation stays pending', async () => {
  const client = certs('renewer');
  const name = `sdk-bad-${RUN}`;
  await client.beginCreateCertificate(name, unknownPolicy(`${name}.contoso.com`, { keyType: 'EC', keyCurveName: 'P-256' }));
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'other.key',
    '-subj', '/CN=other', '-outform', 'DER', '-out', 'other.csr.der');
  const [otherLeaf, ca] = signCsr(readFileSync(join(dir, 'other.csr.der')), 'other');
  await assert.rejects(client.mergeCertificate(name, [otherLeaf, ca]), (e) => {
    assert.equal(e.statusCode, 400);
    assert.ok(e.code, 'an Azure error code');
    return true;
  });
  const op = (await client.getCertificateOperation(name)).getOperationState().certificateOperation;
  assert.equal(op.status, 'inProgress');
  await client.deleteCertificateOperation(name);
});

test('a second create while one is pending is a 409 Conflict', async () => {
  const client = certs('renewer');
  const name = `sdk-conflict-${RUN}`;
  const pol = unknownPolicy(`${name}.contoso.com`, { keyType: 'EC', keyCurveName: 'P-256' });
  await client.beginCreateCertificate(name, pol);
  await assert.rejects(client.beginCreateCertificate(name, pol), (e) => {
    assert.equal(e.statusCode, 409);
    return true;
  });
  await client.deleteCertificateOperation(name);
});

test('issuer Self: the poller completes with the certificate', async () => {
  const client = certs('renewer');
  const name = `sdk-self-${RUN}`;
  const poller = await client.beginCreateCertificate(name, {
    issuerName: 'Self',
    subject: `CN=${name}.contoso.com`,
    subjectAlternativeNames: { dnsNames: [`${name}.contoso.com`] },
    keyType: 'EC',
    keyCurveName: 'P-256',
    validityInMonths: 3,
    contentType: 'application/x-pem-file',
  }, { intervalInMs: 50 });
  const cert = await poller.pollUntilDone();
  assert.equal(poller.getOperationState().isCompleted, true);
  const op = (await client.getCertificateOperation(name)).getOperationState().certificateOperation;
  assert.equal(op.status, 'completed');
  assert.equal(op.issuerName, 'Self');
  assert.equal(cert.name, name);
  const x = new X509Certificate(Buffer.from(cert.cer));
  assert.match(x.subject, new RegExp(`CN=${name}\\.contoso\\.com`));
  assert.equal(x.subject, x.issuer, 'self-issued');
  // checkIssued would also want keyCertSign, which a leaf policy does not ask for.
  assert.ok(x.verify(x.publicKey), 'self-signed');
  assert.match(x.subjectAltName, new RegExp(`DNS:${name}\\.contoso\\.com`));
  const months = (Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86400000;
  assert.ok(months > 85 && months < 95, `about 3 months of validity: ${months} days`);

  const secret = await secrets('sync').getSecret(name);
  assert.equal(secret.properties.contentType, 'application/x-pem-file');
  assert.match(secret.value, /-----BEGIN PRIVATE KEY-----[\s\S]*-----BEGIN CERTIFICATE-----/);
});
