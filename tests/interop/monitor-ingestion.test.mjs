// The official @azure/monitor-ingestion LogsIngestionClient against the
// certlc emulator's Logs Ingestion API (gzip bodies, api%2Dversion, 204), rows
// read back through the emulated query API; a rule the identity may not write
// to and an undeclared column are refused as the SDK reports them.
// run-node-test.sh starts the emulator and passes its endpoints document.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ClientSecretCredential } from '@azure/identity';
import { LogsIngestionClient, isAggregateLogsUploadError } from '@azure/monitor-ingestion';

const endpoints = JSON.parse(readFileSync(process.env.CERTLC_ENDPOINTS, 'utf8'));
const STREAM = 'Custom-CertlcRenewal_CL';

function credential(name) {
  const id = endpoints.identities[name];
  return new ClientSecretCredential(endpoints.tenant, id.client_id, id.client_secret, {
    authorityHost: endpoints.services.entra,
    disableInstanceDiscovery: true,
  });
}

async function query(kql) {
  const token = await credential('admin').getToken('https://api.loganalytics.io/.default');
  const ws = endpoints.log_analytics.workspace_id;
  const res = await fetch(`${endpoints.services.logquery}/v1/workspaces/${ws}/query`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query: kql }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.tables[0];
}

test('upload rows with the SDK and query them back', async () => {
  const dcr = endpoints.log_analytics.dcrs[STREAM];
  assert.ok(dcr, 'the endpoints document names the renewal rule');
  const client = new LogsIngestionClient(endpoints.services.loganalytics, credential('renewer'));
  const rows = [];
  for (let i = 0; i < 25; i++) {
    rows.push({
      TimeGenerated: new Date(Date.UTC(2026, 0, 2, 3, 4, i)).toISOString(),
      Vault: 'sdk-vault', Certificate: `cert-${i}`, Step: 'merge', Outcome: 'ok', DurationMs: i,
    });
  }
  await client.upload(dcr, STREAM, rows);
  const t = await query("CertlcRenewal_CL | where Vault == 'sdk-vault' | summarize count(), max(DurationMs)");
  assert.deepEqual(t.columns.map((c) => `${c.name}:${c.type}`), ['count_:long', 'max_DurationMs:long']);
  assert.deepEqual(t.rows, [[25, 24]]);
});

test('an identity without Monitoring Metrics Publisher is refused', async () => {
  const client = new LogsIngestionClient(endpoints.services.loganalytics, credential('reader'));
  await assert.rejects(
    client.upload(endpoints.log_analytics.dcrs[STREAM], STREAM, [{ Vault: 'x' }]),
    (e) => isAggregateLogsUploadError(e) && e.errors.length === 1 &&
      /403|OperationFailed|does not have access/.test(String(e.errors[0].cause?.message ?? e.errors[0].cause)),
  );
});

test('an undeclared column is refused', async () => {
  const client = new LogsIngestionClient(endpoints.services.loganalytics, credential('renewer'));
  await assert.rejects(
    client.upload(endpoints.log_analytics.dcrs[STREAM], STREAM, [{ Vault: 'x', Colour: 'blue' }]),
    (e) => isAggregateLogsUploadError(e) && /Colour/.test(String(e.errors[0].cause?.message)),
  );
});
