// The official @azure/eventgrid EventGridPublisherClient against the certlc
// emulator's custom topic publish API: AzureKeyCredential and a bearer token,
// Event Grid schema and CloudEvents, a wrong key refused. A topic and a
// Storage queue subscription are made through the control API; the queue
// shows what Event Grid delivered (one base64 message per event).
// run-node-test.sh starts the emulator and passes its endpoints document.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { AzureKeyCredential, EventGridPublisherClient } from '@azure/eventgrid';
import { ClientSecretCredential } from '@azure/identity';
import { QueueServiceClient, StorageSharedKeyCredential } from '@azure/storage-queue';

const endpoints = JSON.parse(readFileSync(process.env.CERTLC_ENDPOINTS, 'utf8'));
const ACCOUNT = 'devstoreaccount1';
const STORAGE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const TOPIC = 'sdk-topic';
const TOPIC_KEY = 'sdk-topic-key-' + randomUUID();
const QUEUE = 'sdk-eventgrid';

function credential(name) {
  const id = endpoints.identities[name];
  return new ClientSecretCredential(endpoints.tenant, id.client_id, id.client_secret, {
    authorityHost: endpoints.services.entra,
    disableInstanceDiscovery: true,
  });
}

async function control(method, path, body) {
  const token = await credential('admin').getToken('api://certlc-emulator/.default');
  const res = await fetch(endpoints.services.control + path, {
    method,
    headers: { authorization: `Bearer ${token.token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

function endpoint() {
  assert.ok(endpoints.services.eventgrid, 'the endpoints document names the eventgrid service');
  return `${endpoints.services.eventgrid}/topics/${TOPIC}/api/events`;
}

async function queue() {
  const svc = new QueueServiceClient(`${endpoints.services.queue}/${ACCOUNT}`,
    new StorageSharedKeyCredential(ACCOUNT, STORAGE_KEY));
  const q = svc.getQueueClient(QUEUE);
  await q.createIfNotExists();
  return q;
}

// Waits (bounded) until the subscription has nothing pending.
async function settled(name, want) {
  const until = Date.now() + 10000;
  for (;;) {
    const s = await control('GET', `/control/eventgrid/subscriptions/${name}`);
    if (s.pending === 0 && s.delivered >= want) return s;
    assert.ok(Date.now() < until, `subscription ${name}: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('EventGridPublisherClient publishes to the emulated custom topic', async () => {
  const q = await queue();
  await control('PUT', `/control/eventgrid/topics/${TOPIC}`, { key: TOPIC_KEY });
  await control('PUT', '/control/eventgrid/subscriptions/sdk-queue', {
    topic: TOPIC,
    destination: { type: 'storagequeue', account: ACCOUNT, queue: QUEUE },
  });

  const eg = new EventGridPublisherClient(endpoint(), 'EventGrid', new AzureKeyCredential(TOPIC_KEY));
  await eg.send([
    { id: 'sdk-1', subject: 'sdk/one', eventType: 'Certlc.Sdk', dataVersion: '1.0', data: { n: 1 } },
    { id: 'sdk-2', subject: 'sdk/two', eventType: 'Certlc.Sdk', dataVersion: '1.0', data: { n: 2 } },
  ]);

  const ce = new EventGridPublisherClient(endpoint(), 'CloudEvent', new AzureKeyCredential(TOPIC_KEY));
  await ce.send([{ id: 'sdk-3', source: '/certlc/sdk', type: 'Certlc.Cloud', subject: 'sdk/three', data: { n: 3 } }]);

  // A bearer token of an identity holding EventGrid Data Sender (admin holds all).
  const bearer = new EventGridPublisherClient(endpoint(), 'EventGrid', credential('admin'));
  await bearer.send([{ id: 'sdk-4', subject: 'sdk/four', eventType: 'Certlc.Sdk', dataVersion: '1', data: {} }]);

  await settled('sdk-queue', 4);
  const got = await q.receiveMessages({ numberOfMessages: 32 });
  const events = got.receivedMessageItems.map((m) =>
    JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')));
  assert.deepEqual(events.map((e) => e.id).sort(), ['sdk-1', 'sdk-2', 'sdk-3', 'sdk-4']);
  const one = events.find((e) => e.id === 'sdk-1');
  assert.equal(one.eventType, 'Certlc.Sdk');
  assert.deepEqual(one.data, { n: 1 });
  assert.match(one.topic, /\/providers\/Microsoft\.EventGrid\/topics\/sdk-topic$/i);
  const three = events.find((e) => e.id === 'sdk-3');
  assert.equal(three.specversion, '1.0');
  assert.equal(three.source, '/certlc/sdk');
  await q.delete();
});

test('a wrong key and an identity without the role are refused', async () => {
  const bad = new EventGridPublisherClient(endpoint(), 'EventGrid', new AzureKeyCredential('wrong-key'));
  await assert.rejects(
    bad.send([{ id: 'x', subject: 's', eventType: 'T', dataVersion: '1', data: {} }]),
    (e) => { assert.equal(e.statusCode, 401); return true; });
  const renewer = new EventGridPublisherClient(endpoint(), 'EventGrid', credential('renewer'));
  await assert.rejects(
    renewer.send([{ id: 'y', subject: 's', eventType: 'T', dataVersion: '1', data: {} }]),
    (e) => { assert.equal(e.statusCode, 403); return true; });
});
