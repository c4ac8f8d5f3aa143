// The Studio in Debian's Chromium, against the 3-node cluster tests/studio/run.sh started:
// what an administrator, an operator, a user, a two-factor user and a stranger see and do.
// Each check waits for what the page shows (Playwright's auto-waiting locators), never for a
// fixed time; what the cluster did is checked with curl and openssl, as a user would.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { profile, launch } from './browser.mjs';

const WORK = process.env.STUDIO_WORK;
const CA = process.env.STUDIO_CA;
const ROOT = process.env.STUDIO_ROOT;
const NODES = Object.fromEntries(process.env.STUDIO_NODES.split(' ').map((kv) => kv.split('=')));
const PIDS = Object.fromEntries(process.env.STUDIO_PIDS.split(' ').map((kv) => kv.split('=')));
const LEADER = process.env.STUDIO_LEADER;
const NODE_D = process.env.STUDIO_D;
const WK_ADMIN = process.env.STUDIO_WK_ADMIN;
const SHOTS = process.env.STUDIO_SHOTS || join(WORK, 'shots');
const OUT = join(WORK, 'browser');
const CERTS = join(WORK, 'c');
const TIMEOUT = 20000;
mkdirSync(SHOTS, { recursive: true });
mkdirSync(OUT, { recursive: true });

let passed = 0;
let current = null; // the page to photograph when a step fails
const started = Date.now();
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    console.log(`not ok - ${name}\n${e.stack || e}`);
    if (current) await current.screenshot({ path: join(OUT, 'failure.png'), fullPage: true }).catch(() => {});
    console.log(`(screenshot of the page: ${join(OUT, 'failure.png')})`);
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  }
  passed += 1;
  console.log(`ok ${passed} - ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

// ---- the cluster as curl sees it ----

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'], ...opts });
}
// curl(pem, method, tag, path) -> {status, body}. A 503 NotReady (answered before anything is
// done: a read lease that lapsed for a moment on a loaded machine) is asked again for up to
// 30 s, as lib.sh's `must` does.
function curl(pem, method, tag, path) {
  const end = Date.now() + 30000;
  for (;;) {
    const out = sh('curl', ['-s', '-o', join(OUT, 'curl.body'), '-w', '%{http_code}', '--cacert', CA,
      ...(pem ? ['--cert', pem] : []), '-X', method, `${NODES[tag]}${path}`]);
    const r = { status: Number(out), body: readFileSync(join(OUT, 'curl.body'), 'utf8') };
    if (r.status !== 503 || !r.body.includes('"Type":"NotReady"') || Date.now() > end) return r;
    sh('sleep', ['0.1']);
  }
}
const ADMIN = join(CERTS, 'admin.pem');
function registered(name) {
  const r = curl(ADMIN, 'GET', 'A', `/admin/certificates?name=${encodeURIComponent(name)}`);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body).Results;
}
// the SHA-1 thumbprint of a PEM certificate, upper case as RavenDB writes it
function fingerprint(pem) {
  return sh('openssl', ['x509', '-noout', '-fingerprint', '-sha1'], { input: pem }).replace(/.*=|:|\s/g, '');
}
function unzip(zip, dir) {
  mkdirSync(dir, { recursive: true });
  sh('unzip', ['-q', '-o', zip, '-d', dir]);
}

// ---- browsers ----

const origins = Object.values(NODES);
const browsers = [];
async function browserAs(who, pfx, password = '', size) {
  const p = profile(join(OUT, `profile-${who}`), { pfx, password, rootCa: ROOT, origins });
  const ctx = await launch(p, size);
  browsers.push(ctx);
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // an API refusal or a node that is down is logged by Chromium itself ("Failed to load
  // resource"): the Studio shows those; anything else (a script error, a CSP refusal) is a bug
  page.on('console', (m) => { if (m.type() === 'error' && !/^Failed to load resource: /.test(m.text())) errors.push(m.text()); });
  page.jsErrors = errors;
  current = page;
  return page;
}
// a page whole; a dialog as the window shows it (its backdrop covers the window only)
const shot = (page, name, fullPage = true) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
const studio = (tag, hash = '') => `${NODES[tag]}/studio/${hash}`;
const row = (page, name) => page.locator('#client-certs tbody tr', { has: page.locator('td.name', { hasText: new RegExp(`^${name}(you|2FA|\\+|$)`) }) });

try {
  let admin;
  await step('a Cluster Admin sees every certificate, the well-known and the server certificates', async () => {
    admin = await browserAs('admin', join(CERTS, 'z-admin', 'admin.pfx'));
    await admin.goto(studio('A'));
    await admin.getByRole('heading', { name: 'Certificates', level: 1 }).waitFor();
    await admin.getByTestId('me').filter({ hasText: 'admin' }).waitFor();
    for (const n of ['admin', 'oper', 'user', 'alice', 'soon', 'expired']) await row(admin, n).waitFor();
    await row(admin, 'admin').getByText('you').waitFor();
    await row(admin, 'alice').locator('.badge.twofa').waitFor();
    await row(admin, 'user').getByText('orders: Read/Write').waitFor();
    // the admin used the cluster: a time, not "not used"
    await assert.doesNotReject(row(admin, 'admin').locator('td[data-label="Last Used"] time').waitFor());
    await row(admin, 'oper').getByText('not used').waitFor();
    // "user" was seen by node C only: its time comes from C's statistics, through A
    await row(admin, 'user').locator('td[data-label="Last Used"] time').waitFor();
    await row(admin, 'soon').getByText(/^Expires in [45] days$/).waitFor();
    await row(admin, 'expired').locator('.badge.bad').filter({ hasText: /^Expired$/ }).waitFor();
    assert.equal(await row(admin, 'admin').locator('.badge.warn, .badge.bad').count(), 0, 'a 5-year certificate marked as expiring');
    for (const tag of ['A', 'B', 'C']) {
      const info = JSON.parse(curl(ADMIN, 'GET', tag, '/cluster/node-info').body);
      const srv = admin.locator('#server-certs tr', { hasText: `Server certificate for communication ${tag}` });
      await srv.locator(`[data-thumbprint="${info.Thumbprint}"]`).waitFor();
    }
    await admin.locator('#server-certs tr', { hasText: 'Server Certificate' }).first().waitFor();
    const wk = admin.locator('section[aria-labelledby="wk-title"]');
    await wk.locator('tr', { hasText: 'Well-known admin certificate' }).locator(`[data-thumbprint="${WK_ADMIN}"]`).waitFor();
    const issuer = fingerprint(readFileSync(join(WORK, 'own', 'partner-ca.crt'), 'utf8'));
    await wk.locator('tr', { hasText: 'Well-known issuer certificate' }).locator(`[data-thumbprint="${issuer}"]`).waitFor();
    // Replace server certificate is offered on the leader, elsewhere a link to it
    if (LEADER === 'A') {
      await admin.locator('button:not([disabled])', { hasText: 'Replace server certificate' }).waitFor();
    } else {
      await admin.getByRole('link', { name: `Open the Studio on node ${LEADER}` }).waitFor();
      assert.ok(await admin.getByRole('button', { name: 'Replace server certificate' }).isDisabled(), 'Replace is not disabled off the leader');
    }
    // at 1280 x 800 every column of the list shows, its actions included
    const wrap = admin.locator('.tablewrap', { has: admin.locator('#client-certs') });
    assert.ok(await wrap.evaluate((el) => el.scrollWidth <= el.clientWidth), 'the list is wider than the window');
    await shot(admin, 'certificates');
  });

  await step('the filter finds certificates by name, thumbprint and clearance', async () => {
    const filter = admin.getByRole('searchbox', { name: 'Filter certificates' });
    await filter.fill('operator');
    await row(admin, 'oper').waitFor();
    await row(admin, 'alice').waitFor();
    await row(admin, 'user').waitFor({ state: 'detached' });
    const tp = JSON.parse(curl(join(CERTS, 'user.pem'), 'GET', 'A', '/certificates/whoami').body).Thumbprint;
    await filter.fill(tp.slice(4, 16).toLowerCase());
    await row(admin, 'user').waitFor();
    await row(admin, 'oper').waitFor({ state: 'detached' });
    await filter.fill('');
    await row(admin, 'oper').waitFor();
    // the thumbprint is shortened on screen and copied whole
    await admin.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: NODES.A });
    await row(admin, 'user').getByRole('button', { name: 'Copy thumbprint' }).click();
    await row(admin, 'user').getByRole('button', { name: 'Copy thumbprint' }).filter({ hasText: 'Copied' }).waitFor();
    assert.equal(await admin.evaluate(() => navigator.clipboard.readText()), tp);
    const names = () => admin.locator('#client-certs tbody tr td.name').evaluateAll((tds) => tds.map((td) => td.firstChild.textContent));
    const sorted = (await names()).slice().sort((a, b) => a.localeCompare(b));
    await admin.getByRole('button', { name: 'Name', exact: true }).click();
    await admin.locator('th[aria-sort="ascending"]', { hasText: 'Name' }).waitFor();
    assert.deepEqual(await names(), sorted);
    await admin.getByRole('button', { name: 'Name', exact: true }).click();
    await admin.locator('th[aria-sort="descending"]', { hasText: 'Name' }).waitFor();
    assert.deepEqual(await names(), sorted.slice().reverse());
    // back to the default: by clearance, Cluster Admin first
    await admin.getByRole('button', { name: 'Security Clearance' }).click();
    await admin.locator('th[aria-sort="ascending"]', { hasText: 'Security Clearance' }).waitFor();
    assert.equal((await names())[0], 'admin');
  });

  let gen;
  await step('generate: the dialog by keyboard, the zip downloaded, its .pfx opens with the passphrase and chains to the root', async () => {
    await admin.getByRole('button', { name: 'Generate client certificate' }).click();
    const dlg = admin.getByRole('dialog', { name: 'Generate client certificate' });
    await dlg.waitFor();
    assert.equal(await admin.evaluate(() => document.activeElement.name), 'name', 'the name field has the focus');
    await admin.keyboard.press('Escape');
    await dlg.waitFor({ state: 'detached' });
    await admin.getByRole('button', { name: 'Generate client certificate' }).click();
    await dlg.getByLabel('Name', { exact: true }).fill('studio-gen');
    await dlg.getByLabel('Security clearance').selectOption('ValidUser');
    await dlg.getByRole('button', { name: '+ Add database' }).click();
    await dlg.getByLabel('Database name').fill('bad/name');
    assert.ok(await dlg.getByLabel('Database name').evaluate((el) => el.validity.patternMismatch), 'a database name with "/" is taken');
    await dlg.getByLabel('Database name').fill('orders');
    assert.ok(await dlg.getByLabel('Database name').evaluate((el) => el.validity.valid));
    await dlg.getByLabel('Access level').selectOption('Read');
    await dlg.getByLabel('Certificate passphrase').fill('pass-123');
    await dlg.getByLabel('Expiration period').selectOption('12');
    await dlg.getByLabel('Key type').selectOption('EC-P384');
    await shot(admin, 'generate', false);
    const [dl] = await Promise.all([admin.waitForEvent('download'), dlg.getByRole('button', { name: 'Generate' }).click()]);
    assert.equal(dl.suggestedFilename(), 'studio-gen.zip');
    gen = join(OUT, 'studio-gen');
    await dl.saveAs(`${gen}.zip`);
    unzip(`${gen}.zip`, gen);
    for (const f of ['studio-gen.pfx', 'studio-gen.crt', 'studio-gen.key']) assert.ok(existsSync(join(gen, f)), `${f} in the zip`);
    const subj = sh('openssl', ['pkcs12', '-in', join(gen, 'studio-gen.pfx'), '-passin', 'pass:pass-123', '-nokeys', '-clcerts']);
    assert.match(subj, /CN\s*=\s*studio-gen/);
    assert.throws(() => sh('openssl', ['pkcs12', '-in', join(gen, 'studio-gen.pfx'), '-passin', 'pass:wrong', '-nokeys']));
    sh('openssl', ['verify', '-CAfile', ROOT, '-untrusted', join(WORK, 'pki', 'issuing.crt'), join(gen, 'studio-gen.crt')]);
    const end = sh('openssl', ['x509', '-in', join(gen, 'studio-gen.crt'), '-noout', '-enddate']);
    const days = (Date.parse(end.replace('notAfter=', '').trim()) - Date.now()) / 86400000;
    assert.ok(days > 360 && days < 370, `a year of validity, not ${days} days`);
    assert.match(sh('openssl', ['x509', '-in', join(gen, 'studio-gen.crt'), '-noout', '-text']), /384 bit|secp384r1/);
    await row(admin, 'studio-gen').getByText('orders: Read').waitFor();
    await admin.getByText('Generated studio-gen').waitFor();
    const reg = registered('studio-gen');
    assert.equal(reg.length, 1);
    assert.deepEqual(reg[0].Permissions, { orders: 'Read' });
  });

  await step('generate with two-factor authentication: the key and its QR code shown once', async () => {
    await admin.getByRole('button', { name: 'Generate client certificate' }).click();
    const dlg = admin.getByRole('dialog', { name: 'Generate client certificate' });
    await dlg.getByLabel('Name', { exact: true }).fill('studio-2fa');
    await dlg.getByLabel('Security clearance').selectOption('Operator');
    await dlg.getByLabel('Require two-factor authentication').check();
    const [dl] = await Promise.all([admin.waitForEvent('download'), dlg.getByRole('button', { name: 'Generate' }).click()]);
    await dl.saveAs(join(OUT, 'studio-2fa.zip'));
    const key = admin.getByRole('dialog', { name: 'Two-factor key of studio-2fa' });
    await key.waitFor();
    assert.match(await key.getByTestId('twofa-secret').textContent(), /^[A-Z2-7]{32}$/);
    const img = key.getByRole('img', { name: 'QR code of the two-factor key of studio-2fa' });
    await img.waitFor();
    assert.ok(await img.evaluate((el) => el.complete && el.naturalWidth > 0), 'the QR code is drawn');
    await shot(admin, 'two-factor-key', false);
    await key.getByRole('button', { name: 'Done' }).click();
    await row(admin, 'studio-2fa').locator('.badge.twofa').waitFor();
    assert.equal(registered('studio-2fa')[0].HasTwoFactor, true);
  });

  await step('upload a .pfx collection: one entry, each of its certificates registered', async () => {
    await admin.getByRole('button', { name: 'Upload client certificate' }).click();
    const dlg = admin.getByRole('dialog', { name: 'Upload client certificate' });
    await dlg.getByLabel('Certificate file').setInputFiles(join(WORK, 'own', 'collection.pfx'));
    await dlg.getByLabel('Name', { exact: true }).fill('studio-collection');
    await dlg.getByLabel('.pfx password').fill('s3cret');
    await dlg.getByLabel('Security clearance').selectOption('ValidUser');
    await dlg.getByRole('button', { name: '+ Add database' }).click();
    await dlg.getByLabel('Database name').fill('hr');
    await dlg.getByRole('button', { name: 'Upload' }).click();
    await dlg.waitFor({ state: 'detached' });
    const r = row(admin, 'studio-collection');
    await r.getByText('+1 more in its .pfx').waitFor();
    await assert.doesNotReject(r.getByText('hr: Read/Write').waitFor());
    const reg = registered('studio-collection');
    assert.equal(reg.length, 1, 'one entry');
    assert.equal(reg[0].CollectionSecondaryKeys.length, 1);
    const tp2 = fingerprint(readFileSync(join(WORK, 'own', 'member-2.crt'), 'utf8'));
    assert.equal(reg[0].CollectionSecondaryKeys[0], tp2);
  });

  await step('upload a .crt: registered with the clearance chosen', async () => {
    await admin.getByRole('button', { name: 'Upload client certificate' }).click();
    const dlg = admin.getByRole('dialog', { name: 'Upload client certificate' });
    await dlg.getByLabel('Certificate file').setInputFiles(join(WORK, 'own', 'plain.crt'));
    assert.equal(await dlg.getByLabel('Name', { exact: true }).inputValue(), 'plain', 'the name taken from the file');
    await dlg.getByLabel('Security clearance').selectOption('Operator');
    await dlg.getByRole('button', { name: 'Upload' }).click();
    await row(admin, 'plain').getByText('Operator').waitFor();
    const [reg] = registered('plain');
    assert.equal(reg.Thumbprint, fingerprint(readFileSync(join(WORK, 'own', 'plain.crt'), 'utf8')));
    assert.equal(reg.SecurityClearance, 'Operator');
  });

  await step('upload a .pem of certificate and key: the key never leaves the browser', async () => {
    const pem = join(OUT, 'with-key.pem');
    sh('sh', ['-c', `cat "${join(WORK, 'own', 'keyed.key')}" "${join(WORK, 'own', 'keyed.crt')}" > "${pem}"`]);
    const bodies = [];
    const seen = (req) => { if (req.method() === 'PUT') bodies.push(req.postData() || ''); };
    admin.on('request', seen);
    await admin.getByRole('button', { name: 'Upload client certificate' }).click();
    const dlg = admin.getByRole('dialog', { name: 'Upload client certificate' });
    await dlg.getByLabel('Certificate file').setInputFiles(pem);
    await dlg.getByLabel('Name', { exact: true }).fill('with-key');
    await dlg.getByRole('button', { name: 'Upload' }).click();
    await row(admin, 'with-key').waitFor();
    admin.off('request', seen);
    assert.equal(bodies.length, 1);
    const sent = Buffer.from(JSON.parse(bodies[0]).Certificate, 'base64').toString();
    assert.match(sent, /BEGIN CERTIFICATE/);
    assert.doesNotMatch(sent, /PRIVATE KEY/);
    assert.equal(registered('with-key')[0].Thumbprint, fingerprint(readFileSync(join(WORK, 'own', 'keyed.crt'), 'utf8')));
  });

  await step('an upload the API refuses shows the server\'s message', async () => {
    await admin.getByRole('button', { name: 'Upload client certificate' }).click();
    const dlg = admin.getByRole('dialog', { name: 'Upload client certificate' });
    await dlg.getByLabel('Certificate file').setInputFiles({ name: 'junk.pem', mimeType: 'text/plain', buffer: Buffer.from('not a certificate') });
    await dlg.getByLabel('Name', { exact: true }).fill('junk');
    await dlg.getByRole('button', { name: 'Upload' }).click();
    await dlg.getByRole('alert').getByText(/Unable to (parse|load) the (Certificate property|provided certificate)/).waitFor();
    await dlg.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(registered('junk').length, 0);
  });

  await step('edit: clearance and database permissions, on every node', async () => {
    await row(admin, 'studio-gen').getByRole('button', { name: 'Edit studio-gen' }).click();
    const dlg = admin.getByRole('dialog', { name: 'Edit certificate studio-gen' });
    await dlg.getByRole('button', { name: '+ Add database' }).click();
    await dlg.getByLabel('Database name').nth(1).fill('hr');
    await dlg.getByLabel('Access level').nth(1).selectOption('Admin');
    await dlg.getByRole('button', { name: 'Save' }).click();
    await row(admin, 'studio-gen').getByText('hr: Admin').waitFor();
    await row(admin, 'studio-gen').getByText('orders: Read').waitFor();
    const tp = registered('studio-gen')[0].Thumbprint;
    for (const tag of ['B', 'C']) {
      const c = JSON.parse(curl(ADMIN, 'GET', tag, `/admin/certificates?thumbprint=${tp}`).body).Results[0];
      assert.deepEqual(c.Permissions, { orders: 'Read', hr: 'Admin' }, `node ${tag}`);
    }
  });

  await step('edit: two-factor authentication removed from a certificate', async () => {
    await row(admin, 'studio-2fa').getByRole('button', { name: 'Edit studio-2fa' }).click();
    const dlg = admin.getByRole('dialog', { name: 'Edit certificate studio-2fa' });
    await dlg.getByText('Two-factor authentication: required').waitFor();
    await dlg.getByLabel('Remove two-factor authentication from this certificate').check();
    await dlg.getByRole('button', { name: 'Save' }).click();
    await dlg.waitFor({ state: 'detached' });
    await row(admin, 'studio-2fa').locator('.badge.twofa').waitFor({ state: 'detached' });
    assert.equal(registered('studio-2fa')[0].HasTwoFactor, false);
  });

  await step('clone: a new certificate with the same clearance and permissions', async () => {
    await row(admin, 'user').getByRole('button', { name: 'Clone user' }).click();
    const dlg = admin.getByRole('dialog', { name: 'Clone certificate user' });
    assert.equal(await dlg.getByLabel('Name', { exact: true }).inputValue(), 'user');
    assert.equal(await dlg.getByLabel('Database name').inputValue(), 'orders');
    await dlg.getByLabel('Name', { exact: true }).fill('user-clone');
    const [dl] = await Promise.all([admin.waitForEvent('download'), dlg.getByRole('button', { name: 'Clone' }).click()]);
    await dl.saveAs(join(OUT, 'user-clone.zip'));
    unzip(join(OUT, 'user-clone.zip'), join(OUT, 'user-clone'));
    await row(admin, 'user-clone').getByText('orders: Read/Write').waitFor();
    const [orig] = registered('user');
    const [clone] = registered('user-clone');
    assert.equal(clone.SecurityClearance, orig.SecurityClearance);
    assert.deepEqual(clone.Permissions, orig.Permissions);
    assert.notEqual(clone.Thumbprint, orig.Thumbprint);
  });

  await step('delete: the confirmation says it revokes everywhere, then every node refuses the certificate', async () => {
    const pem = join(OUT, 'user-clone.pem');
    sh('sh', ['-c', `cat "${join(OUT, 'user-clone', 'user-clone.crt')}" "${join(OUT, 'user-clone', 'user-clone.key')}" > "${pem}"`]);
    for (const tag of ['A', 'B', 'C']) assert.equal(curl(pem, 'GET', tag, '/cluster/topology').status, 200, `before, on ${tag}`);
    await row(admin, 'user-clone').getByRole('button', { name: 'Delete user-clone' }).click();
    const dlg = admin.getByRole('dialog', { name: 'Delete certificate user-clone?' });
    await dlg.getByText('every node of the cluster').waitFor();
    await dlg.getByRole('button', { name: 'Cancel' }).click();
    await row(admin, 'user-clone').waitFor();
    assert.equal(curl(pem, 'GET', 'A', '/cluster/topology').status, 200, 'cancel deletes nothing');
    await row(admin, 'user-clone').getByRole('button', { name: 'Delete user-clone' }).click();
    await dlg.getByRole('button', { name: 'Delete and revoke' }).click();
    await row(admin, 'user-clone').waitFor({ state: 'detached' });
    await admin.getByText('Deleted user-clone').waitFor();
    // the Studio was answered once every node refuses it: no waiting here
    for (const tag of ['A', 'B', 'C']) {
      const r = curl(pem, 'GET', tag, '/cluster/topology');
      assert.equal(r.status, 403, `node ${tag} still lets the deleted certificate in: ${r.body}`);
    }
    assert.equal(await row(admin, 'admin').getByRole('button', { name: 'Delete admin' }).count(), 0, 'no Delete on the certificate in use');
  });

  await step('export: ServerCertificatesCollection.pfx holds the certificate of every node', async () => {
    const [dl] = await Promise.all([admin.waitForEvent('download'), admin.getByRole('button', { name: 'Export server certificates' }).click()]);
    assert.equal(dl.suggestedFilename(), 'ServerCertificatesCollection.pfx');
    const f = join(OUT, 'ServerCertificatesCollection.pfx');
    await dl.saveAs(f);
    const pem = sh('openssl', ['pkcs12', '-in', f, '-passin', 'pass:', '-nokeys']);
    for (const tag of ['A', 'B', 'C']) {
      const tp = JSON.parse(curl(ADMIN, 'GET', tag, '/cluster/node-info').body).Thumbprint;
      const fps = pem.split('-----END CERTIFICATE-----').filter((b) => b.includes('-----BEGIN')).map((b) =>
        fingerprint(`${b.slice(b.indexOf('-----BEGIN'))}-----END CERTIFICATE-----\n`));
      assert.ok(fps.includes(tp), `node ${tag}'s certificate ${tp} is in the export (${fps})`);
    }
  });

  await step('CSRF: a form of another site posting to the node with the admin\'s certificate is refused', async () => {
    const evil = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<!doctype html><title>evil</title><form method="post" enctype="text/plain" action="${NODES.A}/admin/certificates">
        <input name='{"Name":"csrf-victim","SecurityClearance":"ClusterAdmin","Permissions":{},"x":"' value='"}'>
        <button>Win a prize</button></form>`);
    });
    await new Promise((r) => evil.listen(0, '127.0.0.1', r));
    try {
      await admin.goto(`http://127.0.0.1:${evil.address().port}/`);
      const [resp] = await Promise.all([admin.waitForResponse(`${NODES.A}/admin/certificates`), admin.getByRole('button', { name: 'Win a prize' }).click()]);
      assert.equal(resp.status(), 403);
      assert.match(await resp.text(), /CrossSiteRequest/);
    } finally {
      evil.close();
    }
    assert.equal(registered('csrf-victim').length, 0, 'the forged post registered a certificate');
  });

  await step('an Operator sees no action it may not take', async () => {
    const op = await browserAs('oper', join(CERTS, 'z-oper', 'oper.pfx'));
    await op.goto(studio('B'));
    await row(op, 'oper').getByText('you').waitFor();
    await row(op, 'user').getByRole('button', { name: 'Edit user' }).waitFor();
    await row(op, 'user').getByRole('button', { name: 'Delete user' }).waitFor();
    assert.equal(await row(op, 'admin').getByRole('button').filter({ hasNotText: 'Copy' }).count(), 0, 'actions on a Cluster Admin certificate');
    assert.equal(await row(op, 'oper').getByRole('button', { name: 'Delete oper' }).count(), 0, 'Delete on its own certificate');
    assert.equal(await op.getByRole('button', { name: 'Replace server certificate' }).count(), 0);
    await op.getByRole('button', { name: 'Generate client certificate' }).click();
    const options = await op.getByRole('dialog').getByLabel('Security clearance').locator('option').allTextContents();
    assert.deepEqual(options, ['User', 'Operator']);
    await op.keyboard.press('Escape');
    await shot(op, 'operator');
    await op.goto(studio('B', '#/cluster'));
    await op.locator('#cluster-nodes tr[data-node="A"]').waitFor();
    assert.equal(await op.getByRole('button', { name: /Add node|Remove node/ }).count(), 0, 'membership actions for an Operator');
    assert.deepEqual(op.jsErrors, []);
  });

  await step('a well-known admin certificate (configured, not registered) gets the whole Studio', async () => {
    const wk = await browserAs('wk-admin', join(WORK, 'own', 'wk-admin.pfx'));
    await wk.goto(studio('C'));
    await wk.getByTestId('me').filter({ hasText: 'Well Known Admin Certificate' }).waitFor();
    await wk.getByRole('button', { name: 'Generate client certificate' }).waitFor();
    await row(wk, 'admin').getByRole('button', { name: 'Edit admin' }).waitFor();
  });

  await step('a User gets a page that says what it may do', async () => {
    const u = await browserAs('user', join(CERTS, 'z-user', 'user.pfx'));
    await u.goto(studio('C'));
    await u.getByRole('heading', { name: 'Your access' }).waitFor();
    await u.locator('#my-databases').getByText('orders').waitFor();
    await u.getByText('read and write').waitFor();
    assert.equal(await u.getByRole('button', { name: 'Generate client certificate' }).count(), 0);
    await shot(u, 'user');
    await u.getByRole('link', { name: 'Cluster', exact: true }).click();
    await u.locator('#cluster-nodes tr[data-node="A"]').getByText('Serving').waitFor();
    assert.equal(await u.getByRole('button', { name: /Add node|Remove node/ }).count(), 0, 'membership actions for a User');
  });

  await step('a certificate the cluster does not know, and none at all: how to import the .pfx, with the node\'s message', async () => {
    const s = await browserAs('stranger', join(WORK, 'own', 'stranger.pfx'));
    await s.goto(studio('A'));
    await s.getByRole('heading', { name: 'Your browser presented no certificate this cluster knows' }).waitFor();
    await s.getByText(/The supplied client certificate 'CN=stranger.*' is unknown to the server/).waitFor();
    await s.getByText('pk12util -d sql:$HOME/.pki/nssdb').waitFor();
    await s.getByText('Firefox:').waitFor();
    await shot(s, 'no-certificate');
    const none = await browserAs('none', null);
    await none.goto(studio('B'));
    await none.getByText(/none was provided by the client/).waitFor();
  });

  await step('two-factor: the clearance screen takes a code from oathtool, wrong codes show the node\'s message', async () => {
    const a = await browserAs('alice', join(CERTS, 'z-alice', 'alice.pfx'));
    await a.goto(studio('A'));
    await a.getByRole('heading', { name: 'Two-factor authentication' }).waitFor();
    await a.getByText('The certificate alice requires two-factor authentication').waitFor();
    assert.equal(await a.getByLabel('Session duration (minutes)').inputValue(), '120');
    assert.ok(await a.getByLabel(/Only this browser/).isChecked(), '"only this browser" is the default');
    await shot(a, 'two-factor');
    await a.getByLabel('Code from your authenticator app').fill('000000');
    await a.getByRole('button', { name: 'Continue' }).click();
    await a.getByRole('alert').getByText(/[Ww]rong/).waitFor();
    const secret = readFileSync(join(WORK, 'alice.secret'), 'utf8').trim();
    await a.getByLabel('Code from your authenticator app').fill(sh('oathtool', ['--totp', '-b', secret]).trim());
    await a.getByLabel('Session duration (minutes)').fill('30');
    await a.getByRole('button', { name: 'Continue' }).click();
    await a.getByRole('heading', { name: 'Certificates', level: 1 }).waitFor();
    await a.getByText(/2FA session until/).waitFor();
    await row(a, 'alice').getByText('you').waitFor();
    // the session belongs to this browser (its cookie): curl with the same certificate still gets 428
    const pem = join(OUT, 'alice.pem');
    sh('sh', ['-c', `cat "${join(CERTS, 'z-alice', 'alice.crt')}" "${join(CERTS, 'z-alice', 'alice.key')}" > "${pem}"`]);
    assert.equal(curl(pem, 'GET', 'A', '/admin/certificates').status, 428);
    await a.getByRole('button', { name: 'End session' }).click();
    await a.getByRole('heading', { name: 'Two-factor authentication' }).waitFor();
    assert.equal(curl(pem, 'GET', 'B', '/admin/certificates').status, 428, 'the session outlived its end');
    // without "only this browser" the session holds for any client with the certificate (a
    // code is taken once: the next one, which the node accepts as well)
    await a.getByLabel(/Only this browser/).uncheck();
    const next = sh('oathtool', ['--totp', '-b', '--now', `@${Math.floor(Date.now() / 1000) + 30}`, secret]).trim();
    await a.getByLabel('Code from your authenticator app').fill(next);
    await a.getByRole('button', { name: 'Continue' }).click();
    await a.getByRole('heading', { name: 'Certificates', level: 1 }).waitFor();
    assert.equal(curl(pem, 'GET', 'B', '/admin/certificates').status, 200, 'a session for every client');
  });

  await step('the Cluster page on the leader: every node, its role, state, term and applied index; add and remove offered', async () => {
    await admin.goto(studio(LEADER, '#/cluster'));
    for (const tag of ['A', 'B', 'C']) {
      const r = admin.locator(`#cluster-nodes tr[data-node="${tag}"]`);
      await r.getByText('Serving').waitFor();
      await r.locator('td[data-label="Applied index"]').filter({ hasText: /^\d+$/ }).waitFor();
      await r.getByText(tag === LEADER ? 'Leader' : 'Follower').waitFor();
      await r.locator('td[data-label="Certificate"] .badge.good').filter({ hasText: /^\d+ days left$/ }).waitFor();
    }
    await admin.locator('#leader').filter({ hasText: `Node ${LEADER}` }).waitFor();
    assert.ok(await admin.getByRole('button', { name: 'Add node' }).isEnabled());
    const follower = ['A', 'B', 'C'].find((t) => t !== LEADER);
    await admin.getByRole('button', { name: `Remove node ${follower}` }).waitFor();
    await admin.getByRole('link', { name: 'Download the CA chain (PEM)' }).waitFor();
    await admin.locator('#ca-expiry').getByText('The issuing CA is valid until').waitFor();
    const [dl] = await Promise.all([admin.waitForEvent('download'), admin.getByRole('link', { name: 'Download the CA chain (PEM)' }).click()]);
    await dl.saveAs(join(OUT, 'ca-chain.pem'));
    assert.match(readFileSync(join(OUT, 'ca-chain.pem'), 'utf8'), /BEGIN CERTIFICATE/);
    // the CRL names the certificate deleted above
    const [crl] = await Promise.all([admin.waitForEvent('download'), admin.getByRole('link', { name: 'Download the CRL' }).click()]);
    await crl.saveAs(join(OUT, 'corvid.crl'));
    const text = sh('openssl', ['crl', '-inform', 'DER', '-in', join(OUT, 'corvid.crl'), '-noout', '-text']);
    const serial = sh('openssl', ['x509', '-in', join(OUT, 'user-clone', 'user-clone.crt'), '-noout', '-serial']).trim().replace('serial=', '').replace(/^0+/, '');
    assert.ok(text.replace(/Serial Number: 0*/g, 'Serial Number: ').includes(`Serial Number: ${serial}`), `the CRL lacks ${serial}:\n${text}`);
    assert.deepEqual(admin.jsErrors, []);
  });

  await step('the Cluster page adds a passive node and removes it', async () => {
    await admin.getByRole('button', { name: 'Add node' }).click();
    const dlg = admin.getByRole('dialog', { name: 'Add a node' });
    await dlg.getByLabel('Node URL').fill(NODE_D);
    await dlg.getByLabel('Tag', { exact: true }).fill('D');
    await dlg.getByRole('button', { name: 'Add node' }).click();
    await dlg.waitFor({ state: 'detached', timeout: 90000 });
    await admin.getByText(/^Node D added/).waitFor();
    const d = admin.locator('#cluster-nodes tr[data-node="D"]');
    await d.getByText('Serving').waitFor({ timeout: 60000 });
    await d.getByText('Member').waitFor();
    await shot(admin, 'cluster');
    await admin.getByRole('button', { name: 'Remove node D' }).click();
    await admin.getByRole('dialog', { name: 'Remove node D?' }).getByRole('button', { name: 'Remove node D' }).click();
    await d.waitFor({ state: 'detached', timeout: 60000 });
    await admin.getByText('Node D removed.').waitFor();
    const topo = JSON.parse(curl(ADMIN, 'GET', LEADER, '/cluster/topology').body);
    assert.deepEqual(Object.keys(topo.Topology.AllNodes).sort(), ['A', 'B', 'C']);
  });

  await step('Replace server certificate: a .pfx for every node, uploaded on the leader; every node switches to it', async () => {
    const TP = process.env.STUDIO_CLUSTER_TP;
    await admin.goto(studio(LEADER));
    await row(admin, 'admin').waitFor();
    await admin.locator('button:not([disabled])', { hasText: 'Replace server certificate' }).click();
    const dlg = admin.getByRole('dialog', { name: 'Replace server certificate' });
    await dlg.getByLabel('Server certificate (.pfx)').setInputFiles(process.env.STUDIO_CLUSTER_PFX);
    await dlg.getByLabel('.pfx password').fill('s3cret');
    await shot(admin, 'replace-server-certificate', false);
    await dlg.getByRole('button', { name: 'Replace' }).click();
    await admin.getByText('The new server certificate is committed').waitFor();
    const presented = (tag) => fingerprint(sh('openssl', ['s_client', '-connect', NODES[tag].replace('https://', '')], { input: '' }));
    const end = Date.now() + TIMEOUT;
    while (!['A', 'B', 'C'].every((t) => presented(t) === TP)) {
      assert.ok(Date.now() < end, `not every node presents ${TP}`);
      sh('sleep', ['0.2']);
    }
    assert.equal(curl(ADMIN, 'GET', 'A', '/admin/certificates/replacement/status').status, 404);
    await admin.reload();
    await admin.locator(`#server-certs [data-thumbprint="${TP}"]`).first().waitFor();
    assert.equal(await admin.locator('#replacement .note').count(), 0, 'the banner stayed');
  });

  await step('a narrow window: the list becomes one card per certificate, nothing wider than the window', async () => {
    const n = await browserAs('narrow', join(CERTS, 'z-admin', 'admin.pfx'), '', { width: 420, height: 800 });
    await n.goto(studio('A'));
    await row(n, 'oper').waitFor();
    const over = await n.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(over <= 0, `the page is ${over}px wider than the window`);
    await shot(n, 'narrow', false);
  });

  await step('a node that goes down mid-session: the Studio says so by itself and links to the others', async () => {
    const down = ['A', 'B', 'C'].find((t) => t !== LEADER);
    await admin.goto(studio(down));
    await row(admin, 'admin').waitFor();
    process.kill(Number(PIDS[down]), 'SIGKILL');
    const banner = admin.locator('#banner[role="alert"]').filter({ hasText: `This node (${down}) does not answer` });
    await banner.waitFor();
    for (const t of ['A', 'B', 'C'].filter((x) => x !== down)) {
      await banner.getByRole('link', { name: `Node ${t} — ${NODES[t]}` }).waitFor();
    }
  });
  await step('no page met a script error or a Content-Security-Policy refusal', async () => {
    for (const b of browsers) for (const p of b.pages()) assert.deepEqual(p.jsErrors || [], [], p.url());
  });
} finally {
  for (const b of browsers) await b.close().catch(() => {});
}
console.log(`${passed} passed, 0 failed (${((Date.now() - started) / 1000).toFixed(0)} s)`);
