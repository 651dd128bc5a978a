// docker/k8s/ under `podman kube play`: the Secret, ConfigMap, Redis and gateway Deployments
// podman can run, on a network of their own. The pod becomes ready and answers a chat with a
// key made through its admin API (the ledger in the Redis pod).
//
// What podman lacks is stood in for, and nothing else changes: every name gets the test's
// prefix; the Secret becomes a podman secret in the format podman 4.3's kube play reads; the
// Service `redis` becomes the Redis pod's own name on the network (podman has no Services);
// the gateway runs one replica with its port published on 127.0.0.1 (hostPort); and its
// liveness probe, an HTTP GET of /healthz that the kubelet would make, is made by the image's
// own `michi-gateway healthcheck` (podman runs probes inside the container, with curl).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  IMAGE, PREFIX, ROOT, client, eventually, freePort, http, pid1Uids, podman, podmanStatus,
  removeAll,
} from './lib.mjs';

const p = (n) => `${PREFIX}-${n}`;
const NETWORK = p('kube');
const SECRET = p('michi-secrets');
const PODS = [p('redis-pod-0'), p('michi-pod-0')];
const GATEWAY = `${p('michi-pod-0')}-michi`;
const played = path.join(process.env.MICHI_CT_WORK, 'kube.yaml');
let origin;
let adminKey;

/** The YAML documents of a file under docker/k8s/, as objects (Debian's python3-yaml). */
function manifests(file) {
  const json = execFileSync('python3', ['-c',
    'import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))',
    path.join(ROOT, 'docker/k8s', file)], { encoding: 'utf8' });
  return JSON.parse(json);
}

function cleanup() {
  removeAll({
    pods: PODS, volumes: [p('michi-redis-data'), p('michi-config')], networks: [NETWORK],
  });
  try {
    execFileSync('podman', ['secret', 'rm', SECRET], { stdio: 'ignore' });
  } catch {
    // not there
  }
}

before(async () => {
  cleanup();
  // The Secret's keys, with values of this run's own, as an operator makes them (the
  // manifest's placeholders are too short to be an admin key: the gateway refuses them).
  const [secret] = manifests('secret.yaml');
  const values = Object.fromEntries(Object.entries(secret.stringData)
    .map(([k, v]) => [k, v === '' ? '' : randomBytes(24).toString('hex')]));
  adminKey = values.MICHI_ADMIN_KEY;
  const data = Object.fromEntries(Object.entries(values)
    .map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  const secretFile = path.join(process.env.MICHI_CT_WORK, 'kube-secret.json');
  writeFileSync(secretFile, JSON.stringify(data), { mode: 0o600 });
  await podman('secret', 'create', SECRET, secretFile);

  const [configMap] = manifests('configmap.yaml');
  configMap.metadata.name = p('michi-config');
  assert.match(configMap.data['michi.yaml'], /@redis:6379\//);
  configMap.data['michi.yaml'] =
    configMap.data['michi.yaml'].replace('@redis:6379/', `@${PODS[0]}:6379/`);

  const port = await freePort();
  const docs = [configMap];
  for (const doc of [...manifests('redis.yaml'), ...manifests('michi.yaml')]) {
    doc.metadata.name = p(doc.metadata.name);
    if (doc.kind === 'PersistentVolumeClaim') docs.push(doc);
    if (doc.kind !== 'Deployment') continue; // Services and the PodDisruptionBudget: not podman's
    const spec = doc.spec.template.spec;
    for (const v of spec.volumes ?? []) {
      const claim = v.persistentVolumeClaim;
      if (claim) claim.claimName = p(claim.claimName);
      if (v.configMap) v.configMap.name = p(v.configMap.name);
    }
    for (const c of spec.containers) {
      for (const e of c.env ?? []) {
        if (e.valueFrom?.secretKeyRef) e.valueFrom.secretKeyRef.name = SECRET;
      }
      for (const e of c.envFrom ?? []) if (e.secretRef) e.secretRef.name = SECRET;
    }
    if (doc.metadata.name === p('michi')) {
      doc.spec.replicas = 1;
      const c = spec.containers[0];
      assert.equal(c.image, 'michi:latest');
      c.image = IMAGE;
      Object.assign(c.ports[0], { hostIP: '127.0.0.1', hostPort: port });
      assert.equal(c.livenessProbe.httpGet.path, '/healthz');
      assert.equal(c.readinessProbe.httpGet.path, '/readyz');
      const { httpGet, ...timing } = c.livenessProbe;
      c.livenessProbe = { ...timing, exec: { command: ['michi-gateway', 'healthcheck'] } };
      assert.ok(spec.terminationGracePeriodSeconds > 30, 'grace period above drain_timeout');
    }
    docs.push(doc);
  }
  writeFileSync(played, docs.map((d) => JSON.stringify(d)).join('\n---\n'));

  await podman('network', 'create', NETWORK);
  await podman('kube', 'play', '--network', NETWORK, played);
  origin = `http://127.0.0.1:${port}`;
});

after(async () => {
  if (process.exitCode) {
    console.log((await podmanStatus('logs', GATEWAY)).stdout);
  }
  await podmanStatus('kube', 'down', played);
  cleanup();
});

test('the gateway pod becomes ready (/readyz) and its liveness check passes', async () => {
  await eventually(async () => (await http(`${origin}/readyz`, { timeout: 2000 })).status === 200,
    { ms: 60_000, what: 'the pod answering /readyz' });
  const r = await podmanStatus('healthcheck', 'run', GATEWAY);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  for (const uid of await pid1Uids(GATEWAY)) assert.notEqual(uid, 0);
});

test('a key made through the admin API answers a chat, the ledger in the Redis pod', async () => {
  const made = await http(`${origin}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: { id: `k8s-${randomBytes(4).toString('hex')}`, class: 'developer' },
  });
  assert.equal(made.status, 201, made.text);
  const openai = client(origin, made.json().secret);
  // The developer class has a daily budget, so this request is admitted by the ledger in Redis
  // (a 503 ledger_unavailable otherwise): until the gateway has reached the Redis pod, retried.
  const r = await eventually(() => openai.chat.completions.create({
    model: 'echo/metered', messages: [{ role: 'user', content: 'hello from a pod' }],
  }), { ms: 30_000, what: 'a chat admitted by the ledger in Redis' });
  assert.equal(r.choices[0].message.content, 'hello from a pod');
});
