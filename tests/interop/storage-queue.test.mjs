// The official @azure/storage-queue SDK against the certlc emulator's queue
// service: Shared Key and a bearer token from the emulated Entra ID; create,
// send, receive, update, delete, peek, properties, and the errors the SDK
// surfaces. run-node-test.sh starts the emulator and passes its endpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { QueueServiceClient, StorageSharedKeyCredential } from '@azure/storage-queue';
import { ClientSecretCredential } from '@azure/identity';

const endpoints = JSON.parse(readFileSync(process.env.CERTLC_ENDPOINTS, 'utf8'));
const ACCOUNT = 'devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

function queueUrl() {
  assert.ok(endpoints.services.queue, 'the endpoints document names the queue service');
  return `${endpoints.services.queue}/${ACCOUNT}`;
}

function sharedKeyService() {
  return new QueueServiceClient(queueUrl(), new StorageSharedKeyCredential(ACCOUNT, KEY));
}

test('create, send, receive, update, delete with Shared Key', async () => {
  const svc = sharedKeyService();
  const q = svc.getQueueClient('sdk-interop');
  const created = await q.create({ metadata: { owner: 'certlc' } });
  assert.equal(created._response.status, 201);
  assert.equal((await q.createIfNotExists({ metadata: { owner: 'certlc' } })).succeeded, false);

  // Event Grid writes base64 of the event JSON; the text must come back verbatim.
  const text = Buffer.from(JSON.stringify({ eventType: 'Microsoft.KeyVault.CertificateNearExpiry' }))
    .toString('base64');
  const sent = await q.sendMessage(text, { visibilityTimeout: 0, messageTimeToLive: 3600 });
  assert.ok(sent.messageId);
  assert.ok(sent.popReceipt);
  assert.ok(sent.expiresOn > sent.insertedOn);

  const props = await q.getProperties();
  assert.equal(props.approximateMessagesCount, 1);
  assert.equal(props.metadata.owner, 'certlc');

  const peeked = await q.peekMessages({ numberOfMessages: 5 });
  assert.equal(peeked.peekedMessageItems.length, 1);
  assert.equal(peeked.peekedMessageItems[0].messageText, text);

  const got = await q.receiveMessages({ numberOfMessages: 1, visibilityTimeout: 60 });
  assert.equal(got.receivedMessageItems.length, 1);
  const m = got.receivedMessageItems[0];
  assert.equal(m.messageId, sent.messageId);
  assert.equal(m.messageText, text);
  assert.equal(m.dequeueCount, 1);
  assert.equal((await q.receiveMessages()).receivedMessageItems.length, 0, 'hidden while leased');

  const upd = await q.updateMessage(m.messageId, m.popReceipt, 'updated text', 0);
  assert.ok(upd.popReceipt && upd.popReceipt !== m.popReceipt, 'a new pop receipt');
  assert.ok(upd.nextVisibleOn instanceof Date);

  // The old receipt is dead.
  await assert.rejects(q.deleteMessage(m.messageId, m.popReceipt), (e) => {
    assert.ok(e.statusCode === 404 || e.statusCode === 400, `status ${e.statusCode}`);
    return true;
  });

  const again = await q.receiveMessages({ visibilityTimeout: 30 });
  assert.equal(again.receivedMessageItems.length, 1);
  assert.equal(again.receivedMessageItems[0].messageText, 'updated text');
  assert.equal(again.receivedMessageItems[0].dequeueCount, 2);
  await q.deleteMessage(again.receivedMessageItems[0].messageId, again.receivedMessageItems[0].popReceipt);
  assert.equal((await q.getProperties()).approximateMessagesCount, 0);

  await q.sendMessage('one');
  await q.clearMessages();
  assert.equal((await q.getProperties()).approximateMessagesCount, 0);

  const names = [];
  for await (const item of svc.listQueues({ prefix: 'sdk-' })) names.push(item.name);
  assert.deepEqual(names, ['sdk-interop']);
  await q.delete();
  await assert.rejects(q.getProperties(), (e) => {
    assert.equal(e.statusCode, 404);
    assert.equal(e.code, 'QueueNotFound');
    return true;
  });
});

test('a wrong Shared Key is refused with AuthenticationFailed', async () => {
  const bad = Buffer.alloc(64, 7).toString('base64');
  const svc = new QueueServiceClient(queueUrl(), new StorageSharedKeyCredential(ACCOUNT, bad));
  await assert.rejects(svc.getQueueClient('sdk-denied').create(), (e) => {
    assert.equal(e.statusCode, 403);
    assert.equal(e.code, 'AuthenticationFailed');
    return true;
  });
});

test('a bearer token from the emulated Entra ID works', async () => {
  const renewer = endpoints.identities.renewer;
  const cred = new ClientSecretCredential(endpoints.tenant, renewer.client_id, renewer.client_secret, {
    authorityHost: endpoints.services.entra,
    disableInstanceDiscovery: true,
  });
  const svc = new QueueServiceClient(queueUrl(), cred);
  const q = svc.getQueueClient('sdk-bearer');
  await q.create();
  await q.sendMessage('with a token');
  const got = await q.receiveMessages();
  assert.equal(got.receivedMessageItems[0].messageText, 'with a token');
  await q.delete();
});
