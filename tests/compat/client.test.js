// RavenDB's official Node.js client (npm `ravendb`, pinned in package-lock.json) against a real
// three-node Corvid cluster, through the client's own operations: topology discovery, certificate
// generation, reads, edits, registration, revocation, clearance refusals, failover and the
// health check that takes a node back, and two-factor sessions (custom commands: the client has
// no operation for them). Run by tests/cluster/compat.sh, which starts the cluster and answers
// this script's requests to stop and start a node.
//
// Environment: COMPAT_NODES (A=https://…,B=…,C=…), COMPAT_ADMIN_PFX (a ClusterAdmin PKCS#12
// without password), COMPAT_CA (the cluster's CA chain, PEM), COMPAT_WORK (a scratch directory),
// COMPAT_SKIP_2FA=1 to leave out the two-factor section.
"use strict";
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");
const tls = require("node:tls");
const { execFileSync } = require("node:child_process");
const raven = require("ravendb");

const WAIT_MS = 30_000; // the bound of every wait for a state to reach another node
const NODES = new Map(process.env.COMPAT_NODES.split(",").map((kv) => kv.split("=", 2)));
const TAGS = [...NODES.keys()];
const URLS = [...NODES.values()];
const CA = fs.readFileSync(process.env.COMPAT_CA);
const WORK = process.env.COMPAT_WORK;
const started = Date.now();
const stores = [];

function log(msg) {
  console.log(`[client ${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
}

// ---- the harness: compat.sh answers "corvid-compat: stop|start TAG" with one line ----
const harness = readline.createInterface({ input: process.stdin });
const replies = harness[Symbol.asyncIterator]();
async function ask(request) {
  console.log(`corvid-compat: ${request}`);
  const { value, done } = await replies.next();
  if (done || value !== "done") throw new Error(`the harness did not do "${request}": ${value}`);
}

// ---- stores and calls ----
function auth(pfx, password) {
  return { certificate: pfx, password, type: "pfx", ca: CA };
}
// A store on every node (the client discovers the topology), or pinned to one URL (no topology
// updates: only that node is asked, after GET /cluster/node-info).
function openStore(authOptions, { urls = URLS, pinned = false } = {}) {
  const store = new raven.DocumentStore(urls, undefined, authOptions);
  store.conventions.requestTimeout = WAIT_MS; // a request that hangs fails instead of holding on
  if (pinned) store.conventions.disableTopologyUpdates = true;
  store.initialize();
  stores.push(store);
  return store;
}
// Sends op; the answer's HTTP status is kept on the result or the error (statusCode).
async function send(server, op) {
  let cmd;
  const wrapped = { resultType: op.resultType, getCommand: (c) => (cmd = op.getCommand(c)) };
  try {
    const result = await server.send(wrapped);
    return { result, statusCode: cmd.statusCode };
  } catch (e) {
    e.statusCode = cmd && cmd.statusCode;
    throw e;
  }
}
async function refused(promise, name, pattern, what) {
  let result;
  try {
    result = await promise;
  } catch (e) {
    assert.equal(e.name, name, `${what}: ${e.name}: ${e.message}`);
    assert.match(e.message, pattern, `${what}`);
    return e;
  }
  assert.fail(`${what}: succeeded (${JSON.stringify(result)}), expected ${name}`);
}
// Polls check() (true when done) every 100 ms for up to WAIT_MS; the last error explains a
// timeout, and one made by fatal() ends the wait at once.
async function waitFor(what, check) {
  const end = Date.now() + WAIT_MS;
  let last = "not yet";
  for (;;) {
    try {
      if (await check()) return;
    } catch (e) {
      if (e.fatal) throw e;
      last = `${e.name}: ${e.message.split("\n")[0]}`;
    }
    if (Date.now() > end) assert.fail(`timed out after ${WAIT_MS} ms waiting for ${what} (${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const perNode = (fn) => Promise.all(TAGS.map(fn));
const fatal = (msg) => {
  throw Object.assign(new Error(msg), { fatal: true });
};

// ---- certificates made outside the cluster (for PUT), and zips ----
function selfSigned(name) {
  const key = path.join(WORK, `${name}.key`), crt = path.join(WORK, `${name}.crt`);
  const pfx = path.join(WORK, `${name}.pfx`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
    "-nodes", "-subj", `/CN=${name}`, "-days", "30", "-keyout", key, "-out", crt], { stdio: "pipe" });
  execFileSync("openssl", ["pkcs12", "-export", "-inkey", key, "-in", crt, "-out", pfx,
    "-passout", "pass:"], { stdio: "pipe" });
  const x509 = new crypto.X509Certificate(fs.readFileSync(crt));
  return { pfx: fs.readFileSync(pfx), base64: x509.raw.toString("base64"), thumbprint: thumb(x509) };
}
const thumb = (x509) => x509.fingerprint.replace(/:/g, "");
function unzip(zip, name) {
  const file = path.join(WORK, `${name}.zip`);
  fs.writeFileSync(file, zip);
  execFileSync("unzip", ["-tq", file], { stdio: "pipe" }); // a valid zip, every CRC right
  const names = execFileSync("unzip", ["-Z1", file]).toString().trim().split("\n");
  const entry = (ext) => {
    const n = names.find((x) => x.endsWith(ext));
    assert.ok(n, `the zip has no ${ext}: ${names}`);
    return execFileSync("unzip", ["-p", file, n]);
  };
  return { pfx: entry(".pfx"), crt: new crypto.X509Certificate(entry(".crt")) };
}

// ---- two-factor sessions: RavenDB's endpoints, which the Node.js client has no operation for ----
class TwoFactorSecretCommand extends raven.RavenCommand {
  get isReadRequest() {
    return true;
  }
  createRequest(node) {
    return { method: "GET", uri: `${node.url}/admin/certificates/2fa/generate` };
  }
  async setResponseAsync(bodyStream) {
    if (!bodyStream) return; // 404: no result
    return this._parseResponseDefaultAsync(bodyStream);
  }
}
class TwoFactorCommand extends raven.RavenCommand {
  constructor(token) {
    super();
    this._token = token;
    this._responseType = "Empty";
  }
  get isReadRequest() {
    return false;
  }
  createRequest(node) {
    if (this._token === undefined) return { method: "DELETE", uri: `${node.url}/authentication/2fa` };
    return {
      method: "POST",
      uri: `${node.url}/authentication/2fa?hasLimits=false`,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ Token: this._token }),
    };
  }
}
const command = (make) => ({ resultType: "CommandResult", getCommand: make });
const totp = (secret, at) =>
  execFileSync("oathtool", ["--totp", "-b", ...(at ? ["-N", `@${at}`] : []), secret])
    .toString()
    .trim();

// ---- the steps ----
const steps = [];
const step = (name, fn) => steps.push({ name, fn });
const S = {}; // what one step leaves to the next

// Waits until ok(definition) holds for thumbprint's definition on every node, read through the
// admin store's executor for that node (forNode, from the discovered topology).
const seenEverywhere = (what, thumbprint, ok) =>
  perNode(async (tag) => {
    const server = await S.store.maintenance.server.forNode(tag);
    await waitFor(`${what} on ${tag}`, async () => ok(await server.send(new raven.GetCertificateOperation(thumbprint))));
  });

step("topology discovery: nodes A, B, C with their URLs, nothing swallowed", async () => {
  const conventions = new raven.DocumentConventions();
  conventions.requestTimeout = WAIT_MS;
  S.admin = auth(fs.readFileSync(process.env.COMPAT_ADMIN_PFX));
  S.executor = raven.ClusterRequestExecutor.create(URLS, {
    authOptions: S.admin,
    documentConventions: conventions,
  });
  const cmd = new raven.GetClusterTopologyCommand();
  await S.executor.execute(cmd);
  assert.deepEqual(cmd.result.topology.members, Object.fromEntries(NODES));
  assert.deepEqual(cmd.result.topology.watchers, {});
  assert.ok(Number.isInteger(cmd.result.etag) && cmd.result.etag > 0, `Etag ${cmd.result.etag}`);
  assert.ok(cmd.result.status instanceof Map);
  assert.ok(TAGS.includes(cmd.result.leader), `leader ${cmd.result.leader}`);
  // The executor's own discovery (the first topology update, whose errors it swallows: its
  // nodes would be tagged "!") gives the same nodes.
  const seen = S.executor.getTopologyNodes().map((n) => [n.clusterTag, n.url]);
  assert.deepEqual(Object.fromEntries(seen), Object.fromEntries(NODES));
  S.store = openStore(S.admin);
});

step("create: the zip holds a .pfx a new store uses", async () => {
  const { rawData } = await S.store.maintenance.server.send(
    new raven.CreateClientCertificateOperation("compat-operator", { compat_db: "Read" }, "Operator", "compat-pw"));
  const files = unzip(rawData, "compat-operator");
  S.operator = { pfx: files.pfx, thumbprint: thumb(files.crt), der: files.crt.raw };
  S.opStore = openStore(auth(files.pfx, "compat-pw"));
  const mine = await S.opStore.maintenance.server.send(new raven.GetCertificatesOperation());
  assert.ok(mine.some((c) => c.thumbprint === S.operator.thumbprint), "the new certificate lists itself");
});

step("get, getCertificates, metadata", async () => {
  const server = S.store.maintenance.server, tp = S.operator.thumbprint;
  const def = await server.send(new raven.GetCertificateOperation(tp));
  assert.equal(def.name, "compat-operator");
  assert.equal(def.thumbprint, tp);
  assert.equal(def.securityClearance, "Operator");
  assert.deepEqual(def.permissions, { compat_db: "Read" });
  assert.ok(Buffer.from(def.certificate, "base64").equals(S.operator.der), "the zip's certificate");
  assert.ok(def.notAfter instanceof Date && def.notAfter > new Date(), `NotAfter ${def.notAfter}`);
  for (const args of [[], [0, 1000]]) {
    const all = await server.send(new raven.GetCertificatesOperation(...args));
    assert.ok(all.some((c) => c.thumbprint === tp), `GetCertificatesOperation(${args}) lacks it`);
  }
  const byName = await server.send(new raven.GetCertificatesMetadataOperation("compat-operator"));
  assert.deepEqual(byName.map((c) => c.thumbprint), [tp]);
  assert.equal(byName[0].certificate, undefined, "metadata without the certificate");
  const meta = await server.send(new raven.GetCertificateMetadataOperation(tp));
  assert.equal(meta.name, "compat-operator");
  assert.equal(meta.securityClearance, "Operator");
  const none = await server.send(new raven.GetCertificateOperation("0".repeat(40)));
  assert.equal(none, undefined, "an unknown thumbprint (404)");
});

step("edit: visible on every node", async () => {
  await S.store.maintenance.server.send(new raven.EditClientCertificateOperation({
    thumbprint: S.operator.thumbprint, name: "compat-operator-2", permissions: { compat_db: "ReadWrite" },
    clearance: "Operator",
  }));
  await seenEverywhere("the edit", S.operator.thumbprint,
    (def) => def.name === "compat-operator-2" && def.permissions.compat_db === "ReadWrite");
});

step("put: a certificate from elsewhere, registered ValidUser, its store refused the listing", async () => {
  S.user = selfSigned("compat-user");
  await S.store.maintenance.server.send(
    new raven.PutClientCertificateOperation("compat-user", S.user.base64, { compat_db: "Read" }, "ValidUser"));
  await seenEverywhere("the registration", S.user.thumbprint,
    (def) => def && def.securityClearance === "ValidUser" && def.name === "compat-user");
  const user = openStore(auth(S.user.pfx));
  const e = await refused(user.maintenance.server.send(new raven.GetCertificatesOperation(0, 10)),
    "AuthorizationException", /Could not authorize access/, "ValidUser listing certificates");
  assert.match(e.message, /GET https:\/\/[^ ]*\/admin\/certificates/);
  // Its topology discovery went through (ValidUser may read it): forNode knows the others.
  const other = await user.maintenance.server.forNode(TAGS[1]);
  await refused(other.send(new raven.GetCertificatesOperation(0, 10)), "AuthorizationException",
    /Could not authorize/, `ValidUser listing certificates on ${TAGS[1]}`);
});

step("clearance: an Operator cannot create a ClusterAdmin", async () => {
  const boss = new raven.CreateClientCertificateOperation("compat-boss", {}, "ClusterAdmin");
  await refused(S.opStore.maintenance.server.send(boss), "AuthorizationException", /lower clearance: Operator/,
    "Operator creating a ClusterAdmin");
  const named = await S.store.maintenance.server.send(new raven.GetCertificatesMetadataOperation("compat-boss"));
  assert.deepEqual(named, [], "nothing registered by the refusal");
});

step("delete: the certificate then refused through every node", async () => {
  const admin = S.store.maintenance.server;
  await admin.send(new raven.DeleteCertificateOperation(S.operator.thumbprint));
  assert.equal(await admin.send(new raven.GetCertificateOperation(S.operator.thumbprint)), undefined);
  // The DELETE returns once every node refuses it, so a success is a failure at once; a node
  // that cannot answer for a moment (503, a read lease lapsing) is asked again. New connections,
  // one store pinned to each node.
  await perNode(async (tag) => {
    const pinned = { urls: [NODES.get(tag)], pinned: true };
    const server = openStore(auth(S.operator.pfx, "compat-pw"), pinned).maintenance.server;
    await waitFor(`the deleted certificate refused on ${tag}`, async () => {
      let e;
      try {
        await server.send(new raven.GetCertificatesOperation(0, 10));
      } catch (x) {
        e = x;
      }
      if (!e) fatal(`node ${tag} served the deleted certificate after the DELETE returned`);
      if (e.name !== "AuthorizationException") throw e;
      if (!/was revoked/.test(e.message)) fatal(`node ${tag}: ${e.message}`);
      return true;
    });
  });
});

step("failover: the node used stopped, the next operation through another, back after a health check", async () => {
  const used = (await S.executor.getPreferredNode()).currentNode.clusterTag;
  log(`the client uses node ${used}: stopping it`);
  await ask(`stop ${used}`);
  const all = await S.store.maintenance.server.send(new raven.GetCertificatesOperation(0, 1000));
  assert.ok(all.some((c) => c.thumbprint === S.user.thumbprint));
  const cmd = new raven.GetClusterTopologyCommand();
  await S.executor.execute(cmd);
  assert.notEqual(cmd.result.nodeTag, used, "answered by the stopped node");
  assert.ok(TAGS.includes(cmd.result.nodeTag));
  log(`answered by ${cmd.result.nodeTag}; starting ${used} again`);
  await ask(`start ${used}`);
  // GET /info/tcp?tcp=health-check answered 200 makes the client use the node again.
  const preferred = async () => (await S.executor.getPreferredNode()).currentNode.clusterTag;
  await waitFor(`the client to use ${used} again`, async () => (await preferred()) === used);
  const again = new raven.GetClusterTopologyCommand();
  await S.executor.execute(again);
  assert.equal(again.result.nodeTag, used);
});

if (process.env.COMPAT_SKIP_2FA === "1") {
  log("two-factor section skipped (COMPAT_SKIP_2FA=1)");
} else {
  step("2FA: a TOTP key, 428 until a session, the session on every node, 428 after logout", async () => {
    const admin = S.store.maintenance.server, first = TAGS[0];
    const gen = await send(admin, command(() => new TwoFactorSecretCommand()));
    assert.equal(gen.statusCode, 200, `GET /admin/certificates/2fa/generate answered ${gen.statusCode}`);
    const secret = gen.result && gen.result.secret;
    assert.match(String(secret), /^[A-Z2-7]{16,}=*$/, "a base32 Secret");
    const mfa = selfSigned("compat-2fa");
    await admin.send(new raven.PutClientCertificateOperation("compat-2fa", mfa.base64, {}, "Operator", secret));
    // A store per node, without topology updates (GET /cluster/topology needs the session too).
    const pinned = new Map(TAGS.map((t) => [t, openStore(auth(mfa.pfx), { urls: [NODES.get(t)], pinned: true })]));
    const on = (tag, op) => send(pinned.get(tag).maintenance.server, op);
    const list = (tag) => on(tag, new raven.GetCertificatesOperation(0, 10));
    const needs2fa = async (tag) => {
      const e = await refused(list(tag), "RavenException", /requires two factor authorization/,
        `without a session on ${tag}`);
      assert.equal(e.statusCode, 428, `without a session on ${tag}: ${e.statusCode}`);
      return true;
    };
    const works = async (tag) => (await list(tag)).statusCode === 200;
    await perNode((tag) => waitFor(`428 on ${tag}`, () => needs2fa(tag))); // once registered there

    const now = Math.floor(Date.now() / 1000);
    const near = new Set([-90, -60, -30, 0, 30, 60, 90].map((d) => totp(secret, now + d)));
    const wrong = ["000000", "111111", "222222", "333333", "444444", "555555"].find((c) => !near.has(c));
    const bad = await on(first, command(() => new TwoFactorCommand(wrong))).catch((e) => e);
    assert.ok(bad instanceof Error && bad.statusCode >= 400 && bad.statusCode < 500,
      `a wrong token answered ${bad.statusCode}`);
    await needs2fa(first);

    const ok = await on(first, command(() => new TwoFactorCommand(totp(secret))));
    assert.equal(ok.statusCode, 202, `POST /authentication/2fa?hasLimits=false answered ${ok.statusCode}`);
    assert.ok(await works(first), `the session on ${first}`);
    await perNode((tag) => waitFor(`the session on ${tag}`, () => works(tag)));

    const out = await on(first, command(() => new TwoFactorCommand()));
    assert.equal(out.statusCode, 204, `DELETE /authentication/2fa answered ${out.statusCode}`);
    await needs2fa(first);
    await perNode((tag) => waitFor(`428 on ${tag} after the logout`, () => needs2fa(tag)));
  });
}

// The thumbprint a node presents on a new TLS connection, upper case.
const presented = (url) =>
  new Promise((resolve, reject) => {
    const u = new URL(url);
    const s = tls.connect({ host: u.hostname, port: Number(u.port), ca: CA }, () => {
      resolve(s.getPeerCertificate().fingerprint.replace(/:/g, ""));
      s.end();
    });
    s.on("error", reject);
  });

step("replace the server certificate: ReplaceClusterCertificateOperation, every node switches to it", async () => {
  const pfx = fs.readFileSync(process.env.COMPAT_CLUSTER_PFX);
  const want = thumb(new crypto.X509Certificate(fs.readFileSync(process.env.COMPAT_CLUSTER_CRT)));
  const leader = (await S.store.maintenance.server.forNode(await leaderTag()));
  const r = await send(leader, new raven.ReplaceClusterCertificateOperation(pfx, false));
  assert.equal(r.statusCode, 201, `replace-cluster-cert answered ${r.statusCode}`);
  await perNode((tag) => waitFor(`${tag} presenting ${want}`, async () => (await presented(NODES.get(tag))) === want));
  // the client goes on with the nodes' new certificate (it trusts the cluster's CA)
  const all = await S.store.maintenance.server.send(new raven.GetCertificatesOperation(0, 1000));
  assert.ok(all.some((c) => c.thumbprint === want && c.securityClearance === "ClusterNode"), "the new certificate is not ClusterNode");
});
const leaderTag = async () => {
  const cmd = new raven.GetClusterTopologyCommand();
  await S.executor.execute(cmd);
  return cmd.result.leader;
};

(async () => {
  const watchdog = setTimeout(() => {
    console.error("FAIL: the client test ran for more than 5 minutes");
    process.exit(1);
  }, 300_000);
  let code = 0;
  for (const { name, fn } of steps) {
    const t0 = Date.now();
    try {
      await fn();
      log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    } catch (e) {
      console.error(`FAIL ${name}\n${e.stack}`);
      code = 1;
      break;
    }
  }
  for (const s of stores) s.dispose();
  if (S.executor) S.executor.dispose();
  clearTimeout(watchdog);
  harness.close();
  log(code ? "FAILED" : "PASS");
  process.exit(code);
})();
