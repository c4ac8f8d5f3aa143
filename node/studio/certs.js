// Manage Server > Certificates (the seeds): the client certificates with every action on them,
// the well-known certificates, and the server certificates of the cluster's nodes.
import { request, getJson, saveResponse, b64 } from './api.js';
import {
  h, replace, field, checkbox, select, toast, openDialog, copyButton, parseDate, fmtDate, fmtTime,
  fmtClock, ago, clearanceBadge, CLEARANCE_LABEL,
} from './ui.js';

const RANK = { ClusterAdmin: 0, ClusterNode: 1, Operator: 2, ValidUser: 3 };
const EXPIRING_DAYS = 14; // RavenDB's Security.Certificate.ExpiringThresholdInDays
const ACCESS = [['Read', 'Read'], ['ReadWrite', 'Read/Write'], ['Admin', 'Admin']];
const KEY_TYPES = [['EC-P256', 'EC P-256 (default)'], ['EC-P384', 'EC P-384'], ['RSA-2048', 'RSA 2048'],
  ['RSA-3072', 'RSA 3072'], ['RSA-4096', 'RSA 4096']];
const PERIODS = [[1, '1 month'], [3, '3 months'], [6, '6 months'], [12, '1 year'], [24, '2 years'],
  [36, '3 years'], [60, '5 years (default)'], [120, '10 years']];
// RavenDB's database names: no / \ " ' < > : | ? * (the pattern attribute is a v-flag regex)
const DB_NAME = '[^\\/\\\\"\'<>:\\|?*]{1,128}';

let sort = { key: 'clearance', dir: 'asc' };
let filterText = '';

const isAdmin = (ctx) => ctx.me.SecurityClearance === 'ClusterAdmin' || ctx.me.SecurityClearance === 'ClusterNode';
// What the caller may do to a certificate of clearance cl (RavenDB's rules: only a Cluster
// Admin touches Cluster Admin and Cluster Node certificates).
const mayTouch = (ctx, cl) => isAdmin(ctx) || (cl !== 'ClusterAdmin' && cl !== 'ClusterNode');

// Every node's "last used" times, the latest per thumbprint; and the nodes that did not answer.
async function lastUsed(ctx) {
  const got = await Promise.allSettled(ctx.nodes.map((n) => getJson('/admin/stats', { nodeTag: n.tag })));
  const latest = new Map();
  const missing = [];
  got.forEach((r, i) => {
    if (r.status !== 'fulfilled') { missing.push(`${ctx.nodes[i].tag} (${r.reason.message})`); return; }
    for (const [tp, when] of Object.entries(r.value.LastRequestTimePerCertificate || {})) {
      const d = parseDate(when);
      const prev = latest.get(tp.toUpperCase());
      if (d && (!prev || d > prev)) latest.set(tp.toUpperCase(), d);
    }
  });
  return { latest, missing };
}

// Every registration, page after page (a page holds PAGE; the first also this node's "Server
// Certificate"), until a page comes back empty.
const PAGE = 1000;
async function allCertificates() {
  const list = await getJson('/admin/certificates', { metadataOnly: true, pageSize: PAGE });
  for (let start = PAGE; ; start += PAGE) {
    const more = await getJson('/admin/certificates', { metadataOnly: true, start, pageSize: PAGE });
    if (!more.Results.length) return list;
    list.Results.push(...more.Results);
  }
}

// Each node's certificate thumbprint (GET /cluster/node-info of every node).
async function nodeThumbprints(ctx) {
  const got = await Promise.allSettled(ctx.nodes.map((n) => getJson('/cluster/node-info', { nodeTag: n.tag })));
  const m = new Map();
  got.forEach((r, i) => { if (r.status === 'fulfilled' && r.value) m.set(ctx.nodes[i].tag, r.value.Thumbprint); });
  return m;
}

function expiryCell(c) {
  const d = parseDate(c.NotAfter);
  if (!d) return '—';
  const days = Math.floor((d.getTime() - Date.now()) / 86400000);
  let badge = null;
  if (days < 0) badge = h('span', { class: 'badge bad' }, 'Expired');
  else if (days <= EXPIRING_DAYS) badge = h('span', { class: 'badge warn' }, days === 0 ? 'Expires today' : `Expires in ${days} day${days === 1 ? '' : 's'}`);
  return [h('time', { datetime: d.toISOString(), title: d.toISOString() }, fmtDate(d)), badge];
}

function lastUsedCell(used) {
  if (!used) return h('span', { class: 'muted' }, 'not used');
  return [h('time', { datetime: used.toISOString(), title: fmtTime(used) }, fmtDate(used)),
    h('span', { class: 'muted small' }, `${fmtClock(used)} · ${ago(used)}`)];
}

function permsCell(c) {
  if (c.SecurityClearance !== 'ValidUser') return h('span', { class: 'muted' }, 'All databases');
  const entries = Object.entries(c.Permissions || {});
  if (!entries.length) return h('span', { class: 'muted' }, 'None');
  return h('div', { class: 'perms' }, entries.sort().map(([db, acc]) =>
    h('span', { class: 'badge db' }, `${db}: ${(ACCESS.find((a) => a[0] === acc) || [0, acc])[1]}`)));
}

// The thumbprint, shortened on screen (the whole one in its title, and copied whole).
export function thumbCell(tp) {
  return h('span', { class: 'thumb' },
    h('code', { title: tp, 'aria-label': tp, 'data-thumbprint': tp }, `${tp.slice(0, 8)}…${tp.slice(-8)}`),
    copyButton(tp, 'thumbprint'));
}

function compare(a, b, used) {
  const by = {
    name: () => a.Name.localeCompare(b.Name),
    clearance: () => (RANK[a.SecurityClearance] - RANK[b.SecurityClearance]) || a.Name.localeCompare(b.Name),
    from: () => (parseDate(a.NotBefore) || 0) - (parseDate(b.NotBefore) || 0),
    expires: () => (parseDate(a.NotAfter) || 0) - (parseDate(b.NotAfter) || 0),
    used: () => (used.get(a.Thumbprint) || 0) - (used.get(b.Thumbprint) || 0),
  }[sort.key]();
  return (sort.dir === 'asc' ? by : -by) || a.Thumbprint.localeCompare(b.Thumbprint);
}

function matches(c, q) {
  if (!q) return true;
  const hay = [c.Name, c.Thumbprint, c.SecurityClearance, CLEARANCE_LABEL[c.SecurityClearance],
    ...Object.keys(c.Permissions || {})].join(' ').toLowerCase();
  return q.toLowerCase().split(/\s+/).every((w) => hay.includes(w));
}

// ---- the forms ----

function permissionsEditor(initial) {
  const rows = h('div', { class: 'permrows' });
  const add = (db = '', acc = 'ReadWrite') => {
    const name = h('input', { type: 'text', name: 'db', required: true, pattern: DB_NAME, value: db, placeholder: 'orders', 'aria-label': 'Database name' });
    const access = select(ACCESS, acc, { name: 'access', 'aria-label': 'Access level' });
    const row = h('div', { class: 'permrow' }, name, access,
      h('button', { type: 'button', class: 'small', 'aria-label': 'Remove this database', onclick: () => { row.remove(); } }, 'Remove'));
    rows.append(row);
    return name;
  };
  for (const [db, acc] of Object.entries(initial || {})) add(db, acc);
  const addBtn = h('button', { type: 'button', class: 'small', onclick: () => add().focus() }, '+ Add database');
  const note = h('p', { class: 'muted small' }, 'Operators and Cluster Admins have access to every database.');
  const box = h('fieldset', null, h('legend', null, 'Database permissions'), rows, addBtn);
  return {
    el: h('div', null, box, note),
    show(cl) { box.hidden = cl !== 'ValidUser'; note.hidden = cl === 'ValidUser'; },
    read() {
      const out = {};
      for (const r of rows.querySelectorAll('.permrow')) {
        out[r.querySelector('[name=db]').value.trim()] = r.querySelector('[name=access]').value;
      }
      return out;
    },
  };
}

function clearanceSelect(ctx, value) {
  const opts = [['ValidUser', 'User'], ['Operator', 'Operator']];
  if (isAdmin(ctx)) opts.push(['ClusterAdmin', 'Cluster Admin']);
  return select(opts, value || 'ValidUser', { name: 'clearance', required: true });
}

// The settings the generate, clone, upload and edit forms share.
function settingsFields(ctx, init) {
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 64, value: init.Name || '', autocomplete: 'off' });
  const cl = clearanceSelect(ctx, init.SecurityClearance);
  const perms = permissionsEditor(init.Permissions);
  perms.show(cl.value);
  cl.addEventListener('change', () => perms.show(cl.value));
  return {
    name, cl, perms,
    els: [field('Name', name), field('Security clearance', cl,
      'User: the databases below only. Operator: every database, and the certificates of Operators and Users. Cluster Admin: everything.'),
    perms.el],
    read: () => ({ Name: name.value.trim(), SecurityClearance: cl.value, Permissions: cl.value === 'ValidUser' ? perms.read() : {} }),
  };
}

function twoFactorBox(label) {
  return checkbox(label || 'Require two-factor authentication (the key and its QR code are shown once)', { name: 'twofa' });
}

function notAfter(months) {
  const d = new Date();
  d.setUTCMonth(d.getUTCMonth() + Number(months));
  return d.toISOString().slice(0, 10);
}

// The key of a certificate that needs two-factor authentication: shown once, after it is made.
function showKey(name, tfa) {
  const svg = `data:image/svg+xml;base64,${btoa(tfa.QrCodeSvg)}`;
  return openDialog({
    title: `Two-factor key of ${name}`,
    cancel: null,
    submit: 'Done',
    onSubmit: async () => {},
    content: [
      h('p', null, 'Scan the QR code with an authenticator app (Google Authenticator, 2FAS, …) or type the key into it. ',
        h('strong', null, 'The cluster does not show this key again.')),
      h('div', { class: 'qr' },
        h('img', { src: svg, alt: `QR code of the two-factor key of ${name}`, width: 180, height: 180 }),
        h('div', null, h('div', { class: 'muted small' }, 'Key'),
          h('div', { class: 'thumb' }, h('span', { class: 'secret', 'data-testid': 'twofa-secret' }, tfa.Secret), copyButton(tfa.Secret, 'key')))),
    ],
  });
}

// A new two-factor key for body's certificate, put into body; the key is returned to be shown.
async function addKey(body) {
  const key = await getJson('/admin/certificates/2fa/generate', { name: body.Name });
  body.TwoFactorAuthenticationKey = key.Secret;
  return key;
}

// After a dialog that changed a certificate ({name, key} or null when cancelled): say so, show
// a new two-factor key once, and read the list again.
async function changed(done, message, reload) {
  if (!done) return;
  toast(message);
  if (done.key) await showKey(done.name, done.key);
  reload();
}

async function generateDialog(ctx, reload, from) {
  const s = settingsFields(ctx, from || { SecurityClearance: 'ValidUser' });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'new-password' });
  const period = select(PERIODS.map(([m, l]) => [String(m), l]), '60', { name: 'period' });
  const keyType = select(KEY_TYPES, 'EC-P256', { name: 'keyType' });
  const tfa = twoFactorBox();
  const made = await openDialog({
    title: from ? `Clone certificate ${from.Name}` : 'Generate client certificate',
    submit: from ? 'Clone' : 'Generate',
    content: [
      from ? h('p', { class: 'note' }, 'A new certificate, with a new key, and the same clearance and database permissions.') : null,
      s.els[0], s.els[1], s.els[2],
      h('div', { class: 'row2' },
        field('Certificate passphrase', pass, 'Protects the .pfx and the key in the zip. Optional.'),
        field('Expiration period', period)),
      field('Key type', keyType), tfa.el,
      h('p', { class: 'muted small' }, 'The browser downloads a zip with the .pfx, .crt and .key. The cluster keeps no copy of the private key.'),
    ],
    onSubmit: async () => {
      const body = { ...s.read(), NotAfter: notAfter(period.value), KeyType: keyType.value };
      if (pass.value) body.Password = pass.value;
      const key = tfa.input.checked ? await addKey(body) : null;
      const res = await request('POST', '/admin/certificates', { json: body });
      const file = await saveResponse(res, `${body.Name}.zip`);
      return { name: body.Name, key, file };
    },
  });
  await changed(made, made && `Generated ${made.name}: the browser saved ${made.file}.`, reload);
}

// RavenDB's Certificate field for a file: base64 of its bytes. A PEM file sends only its
// certificates: a private key beside them (a .pem of certificate and key) stays in the browser.
async function certificateField(f) {
  const bytes = await f.arrayBuffer();
  const text = new TextDecoder().decode(bytes);
  if (!text.includes('-----BEGIN')) return b64(bytes);
  const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  if (!certs) throw new Error(`${f.name} holds no certificate (no BEGIN CERTIFICATE block).`);
  return b64(new TextEncoder().encode(`${certs.join('\n')}\n`));
}

async function uploadDialog(ctx, reload) {
  const s = settingsFields(ctx, { SecurityClearance: 'ValidUser' });
  const file = h('input', { type: 'file', name: 'file', required: true, accept: '.pfx,.p12,.pem,.crt,.cer' });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'off' });
  const tfa = twoFactorBox();
  file.addEventListener('change', () => {
    if (!s.name.value && file.files[0]) s.name.value = file.files[0].name.replace(/\.(pfx|p12|pem|crt|cer)$/i, '');
  });
  const done = await openDialog({
    title: 'Upload client certificate',
    submit: 'Upload',
    content: [
      field('Certificate file', file, '.pfx (with its password), .pem, .crt or .cer. A .pfx holding several certificates becomes one entry: each of them is let in by its own thumbprint.'),
      field('.pfx password', pass, 'Only for a password-protected .pfx.'),
      ...s.els, tfa.el,
    ],
    onSubmit: async () => {
      const f = file.files[0];
      if (!f) throw new Error('Choose a certificate file.');
      const body = { ...s.read(), Certificate: await certificateField(f) };
      if (pass.value) body.Password = pass.value;
      const key = tfa.input.checked ? await addKey(body) : null;
      await request('PUT', '/admin/certificates', { json: body });
      return { name: body.Name, key };
    },
  });
  await changed(done, done && `Registered ${done.name}.`, reload);
}

async function editDialog(ctx, reload, c) {
  const s = settingsFields(ctx, c);
  const tfa = twoFactorBox(c.HasTwoFactor ? 'Remove two-factor authentication from this certificate'
    : 'Require two-factor authentication (a new key, shown once)');
  const done = await openDialog({
    title: `Edit certificate ${c.Name}`,
    submit: 'Save',
    content: [h('p', { class: 'muted small' }, 'Thumbprint ', h('code', null, c.Thumbprint)), ...s.els,
      h('p', { class: 'small' }, 'Two-factor authentication: ', h('strong', null, c.HasTwoFactor ? 'required' : 'not required')), tfa.el],
    onSubmit: async () => {
      const body = { Thumbprint: c.Thumbprint, ...s.read() };
      const drop = tfa.input.checked && c.HasTwoFactor;
      const key = tfa.input.checked && !c.HasTwoFactor ? await addKey(body) : null;
      await request('POST', '/admin/certificates/edit', { query: { deleteTwoFactorConfiguration: drop || undefined }, json: body });
      return { name: body.Name, key };
    },
  });
  await changed(done, done && `Saved ${done.name}.`, reload);
}

async function deleteDialog(ctx, reload, c) {
  const others = (c.CollectionSecondaryKeys || []).length;
  const done = await openDialog({
    title: `Delete certificate ${c.Name}?`,
    submit: 'Delete and revoke',
    danger: true,
    content: [
      h('p', null, 'Deleting revokes it on ', h('strong', null, 'every node of the cluster'),
        ': every client that presents it is refused from now on, and its open connections are closed. This cannot be undone.'),
      others ? h('p', null, `The ${others} other certificate${others === 1 ? '' : 's'} of the same .pfx ${others === 1 ? 'is' : 'are'} deleted with it.`) : null,
      h('p', { class: 'muted small' }, 'Thumbprint ', h('code', null, c.Thumbprint)),
    ],
    onSubmit: async () => {
      await request('DELETE', '/admin/certificates', { query: { thumbprint: c.Thumbprint } });
      return true;
    },
  });
  if (!done) return;
  toast(`Deleted ${c.Name}: it is refused on every node.`);
  reload();
}

async function exportServer() {
  try {
    const res = await request('GET', '/admin/certificates/export');
    const name = await saveResponse(res, 'ServerCertificatesCollection.pfx');
    toast(`The browser saved ${name}.`);
  } catch (e) {
    toast(e.message, 'error');
  }
}

// ---- the page ----

function clientTable(ctx, data, body, count) {
  const rows = data.clients.filter((c) => matches(c, filterText)).sort((a, b) => compare(a, b, data.used));
  count.textContent = rows.length === data.clients.length ? `${rows.length} certificate${rows.length === 1 ? '' : 's'}`
    : `${rows.length} of ${data.clients.length} certificates`;
  if (!rows.length) {
    replace(body, h('tr', { class: 'placeholder' }, h('td', { colspan: 8 },
      data.clients.length ? 'No certificate matches the filter.' : 'No client certificate is registered yet.')));
    return;
  }
  replace(body, rows.map((c) => {
    const mine = c.Thumbprint === ctx.me.Thumbprint;
    const touch = mayTouch(ctx, c.SecurityClearance);
    const n = (c.CollectionSecondaryKeys || []).length;
    return h('tr', { 'data-thumbprint': c.Thumbprint },
      h('td', { class: 'name', 'data-label': 'Name' }, c.Name,
        (mine || c.HasTwoFactor || n) ? h('span', { class: 'sub' },
          mine ? h('span', { class: 'badge good' }, 'you') : null, mine ? ' ' : null,
          c.HasTwoFactor ? h('span', { class: 'badge twofa' }, '2FA') : null, c.HasTwoFactor ? ' ' : null,
          n ? `+${n} more in its .pfx` : null) : null),
      h('td', { 'data-label': 'Thumbprint' }, thumbCell(c.Thumbprint)),
      h('td', { 'data-label': 'Security Clearance' }, clearanceBadge(c.SecurityClearance)),
      h('td', { class: 'date', 'data-label': 'Valid From' }, fmtDate(parseDate(c.NotBefore))),
      h('td', { class: 'date', 'data-label': 'Expiration' }, expiryCell(c)),
      h('td', { class: 'date', 'data-label': 'Last Used' }, lastUsedCell(data.used.get(c.Thumbprint))),
      h('td', { 'data-label': 'Database Permissions' }, permsCell(c)),
      h('td', { class: 'actions-cell' }, touch ? [
        h('button', { type: 'button', class: 'small', 'aria-label': `Clone ${c.Name}`, onclick: () => generateDialog(ctx, data.reload, c) }, 'Clone'),
        h('button', { type: 'button', class: 'small', 'aria-label': `Edit ${c.Name}`, onclick: () => editDialog(ctx, data.reload, c) }, 'Edit'),
        mine ? null : h('button', { type: 'button', class: 'small', 'aria-label': `Delete ${c.Name}`, onclick: () => deleteDialog(ctx, data.reload, c) }, 'Delete'),
      ] : null));
  }));
}

function sortHeader(key, label, redraw) {
  // the arrow is no part of the button's name (aria-sort on the header says the order)
  const arrow = sort.key !== key ? null : h('span', { class: 'arrow', 'aria-hidden': 'true' }, sort.dir === 'asc' ? ' ▲' : ' ▼');
  const b = h('button', { type: 'button', class: 'sort' }, label, arrow);
  b.addEventListener('click', () => {
    sort = { key, dir: sort.key === key && sort.dir === 'asc' ? 'desc' : 'asc' };
    redraw();
  });
  return h('th', { scope: 'col', 'aria-sort': sort.key === key ? (sort.dir === 'asc' ? 'ascending' : 'descending') : null }, b);
}

function wellKnownCard(list) {
  const row = (label, desc, tp) => h('tr', null, h('td', { class: 'name' }, label, h('span', { class: 'sub' }, desc)), h('td', null, thumbCell(tp)));
  const rows = [
    ...(list.WellKnownAdminCerts || []).map((tp) => row('Well-known admin certificate',
      'Given Cluster Admin by its thumbprint in the configuration (Security.WellKnownCertificates.Admin).', tp)),
    ...(list.WellKnownIssuers || []).map((tp) => row('Well-known issuer certificate',
      'A CA: certificates it issued are let in as Cluster Admin (Security.WellKnownIssuers.Admin).', tp)),
  ];
  return h('section', { class: 'card', 'aria-labelledby': 'wk-title' },
    h('header', null, h('h2', { id: 'wk-title' }, 'Well-known certificates'),
      h('p', null, 'Trusted by the nodes\' configuration, not registered in the cluster.')),
    rows.length ? h('div', { class: 'tablewrap' }, h('table', { class: 'stack' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Certificate'), h('th', { scope: 'col' }, 'Thumbprint'))),
      h('tbody', null, rows)))
      : h('p', { class: 'muted' }, 'None configured: no well-known admin certificate (Security.WellKnownCertificates.Admin) and no well-known issuer (Security.WellKnownIssuers.Admin).'));
}

function serverCard(ctx, data) {
  const { list, used, thumbs } = data;
  const own = list.Results.find((r) => r.Thumbprint === list.LoadedServerCert);
  const nodeCerts = list.Results.filter((r) => r.SecurityClearance === 'ClusterNode' && r !== own);
  const row = (label, desc, tag, c, tp) => h('tr', { 'data-node': tag || '' },
    h('td', { class: 'name', 'data-label': 'Certificate' }, label, h('span', { class: 'sub' }, desc)),
    h('td', { 'data-label': 'Node' }, tag ? h('span', { class: 'badge db' }, tag) : '—'),
    h('td', { 'data-label': 'Thumbprint' }, tp ? thumbCell(tp) : h('span', { class: 'muted' }, 'unknown (the node does not answer)')),
    h('td', { class: 'date', 'data-label': 'Valid From' }, c ? fmtDate(parseDate(c.NotBefore)) : '—'),
    h('td', { class: 'date', 'data-label': 'Expiration' }, c ? expiryCell(c) : '—'),
    h('td', { class: 'date', 'data-label': 'Last Used' }, tp ? lastUsedCell(used.get(tp)) : '—'));
  const rows = [];
  if (own) {
    rows.push(row('Server Certificate', `Node ${ctx.nodeTag}'s certificate for HTTPS: it encrypts the traffic with clients and proves the node's identity.`,
      ctx.nodeTag, own, own.Thumbprint));
  }
  const shown = new Set();
  for (const n of ctx.nodes) {
    const tp = thumbs.get(n.tag) || (nodeCerts.find((c) => new RegExp(`for Node ${n.tag}$`, 'i').test(c.Name)) || {}).Thumbprint;
    const c = tp === list.LoadedServerCert ? own : nodeCerts.find((x) => x.Thumbprint === tp);
    if (c) shown.add(c.Thumbprint);
    rows.push(row(`Server certificate for communication ${n.tag}`, `Node ${n.tag} presents it to the other nodes (Raft) and to clients.`, n.tag, c, tp));
  }
  for (const c of nodeCerts.filter((x) => !shown.has(x.Thumbprint))) {
    rows.push(row(c.Name, 'Registered as Cluster Node; no node of the cluster presents it now.', '', c, c.Thumbprint));
  }
  return h('section', { class: 'card', 'aria-labelledby': 'srv-title' },
    h('header', null, h('h2', { id: 'srv-title' }, 'Server certificates'),
      h('p', null, 'The nodes\' own certificates, issued by the cluster CA.')),
    h('div', { class: 'tablewrap' }, h('table', { class: 'stack', id: 'server-certs' },
      h('thead', null, h('tr', null, ['Certificate', 'Node', 'Thumbprint', 'Valid From', 'Expiration', 'Last Used'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, rows))));
}

// Replace server certificate (the seeds): one certificate, naming every node, for the whole
// cluster (POST /admin/certificates/replace-cluster-cert, on the leader). Each node switches
// as soon as it has it; the banner follows GET /admin/certificates/replacement/status.
async function replaceDialog(reload, progress) {
  const file = h('input', { type: 'file', name: 'server-pfx', required: true, accept: '.pfx,.p12' });
  const pass = h('input', { type: 'password', name: 'server-password', autocomplete: 'off' });
  const done = await openDialog({
    title: 'Replace server certificate',
    submit: 'Replace',
    content: [
      h('p', null, 'Upload a new server certificate to replace the current one, updating the server\'s identity for secure connections. ' +
        'Every node switches to it with no restart; the old certificates are revoked.'),
      field('Server certificate (.pfx)', file, 'With its private key, the serverAuth and clientAuth usages, and a name for every node (URI:urn:corvid:node:TAG).'),
      field('.pfx password', pass, 'Only for a password-protected .pfx.'),
    ],
    onSubmit: async () => {
      const f = file.files[0];
      if (!f) throw new Error('Choose the .pfx file of the new server certificate.');
      const body = { Name: f.name, Certificate: b64(await f.arrayBuffer()) };
      if (pass.value) body.Password = pass.value;
      await request('POST', '/admin/certificates/replace-cluster-cert', { json: body });
      return true; // 201, no body (RavenDB's answer)
    },
  });
  if (!done) return;
  toast('The new server certificate is committed: the nodes switch to it.');
  progress();
  reload();
}

// The replacement in progress, if any, and each node's state; polled until it ends.
function replacementBanner(reload) {
  const el = h('div', { id: 'replacement', 'aria-live': 'polite' });
  let timer;
  let seen = false;
  const poll = async () => {
    clearTimeout(timer);
    if (!document.body.contains(el) && seen) return;
    let st = null;
    try {
      st = await getJson('/admin/certificates/replacement/status');
    } catch (e) {
      if (e.status !== 404) { replace(el, h('p', { class: 'note error' }, e.message)); return; }
    }
    if (!st) {
      if (seen) { toast('The server certificate was replaced on every node.'); reload(); }
      seen = false;
      replace(el);
      return;
    }
    seen = true;
    replace(el, h('div', { class: 'note warn', role: 'status' },
      h('strong', null, `Replacing the server certificate with ${st.Thumbprint}: `),
      `${st.Nodes.filter((n) => n.State === 'Replaced').length} of ${st.Nodes.length} nodes switched.`,
      h('ul', { id: 'replacement-nodes' }, st.Nodes.map((n) => h('li', { 'data-node': n.Tag },
        h('strong', null, `Node ${n.Tag}`), ': ', n.State === 'Replaced' ? 'switched' : `not switched yet — ${n.Note}`)))));
    timer = setTimeout(poll, 2000);
  };
  return { el, poll };
}

// A ValidUser sees what it may do instead of the list it may not read.
function renderUser(main, ctx) {
  const perms = Object.entries(ctx.me.Permissions || {}).sort();
  replace(main, h('div', { class: 'pagehead' }, h('div', null, h('h1', null, 'Your access'),
    h('p', null, 'Managing certificates needs Operator or Cluster Admin clearance.'))),
  h('section', { class: 'card', 'aria-labelledby': 'me-title' },
    h('h2', { id: 'me-title' }, ctx.me.Name),
    h('dl', { class: 'kv' },
      h('dt', null, 'Security clearance'), h('dd', null, clearanceBadge(ctx.me.SecurityClearance)),
      h('dt', null, 'Thumbprint'), h('dd', null, thumbCell(ctx.me.Thumbprint)),
      h('dt', null, 'Expiration'), h('dd', null, expiryCell(ctx.me))),
    h('h2', null, 'What this certificate may do'),
    perms.length ? h('ul', { id: 'my-databases' }, perms.map(([db, acc]) => h('li', null, h('strong', null, db), ': ',
      { Read: 'read and query', ReadWrite: 'read and write', Admin: 'read, write and administer the database' }[acc] || acc)))
      : h('p', { id: 'my-databases' }, 'It has no database permission yet: ask an administrator to grant some.'),
    h('p', { class: 'muted small' }, 'It may also read the cluster\'s topology (the Cluster page) and download the CA chain and the CRL.')));
  document.title = 'Your access · Corvid Studio';
}

export async function renderCertificates(main, ctx) {
  if (!['ClusterAdmin', 'ClusterNode', 'Operator'].includes(ctx.me.SecurityClearance)) {
    renderUser(main, ctx);
    return;
  }
  document.title = 'Certificates · Corvid Studio';
  const admin = isAdmin(ctx);
  const count = h('span', { class: 'muted small', 'aria-live': 'polite' }, ' ');
  const tbody = h('tbody', null, h('tr', { class: 'placeholder' }, h('td', { colspan: 8 }, 'Loading certificates…')));
  const filter = h('input', { type: 'search', placeholder: 'Filter by name, thumbprint or clearance', 'aria-label': 'Filter certificates', value: filterText });
  const usedNote = h('p', { class: 'muted small', hidden: true });
  const thead = h('thead');
  const rest = h('div');
  const data = { clients: [], used: new Map() };
  const redraw = () => {
    replace(thead, h('tr', null, sortHeader('name', 'Name', redraw), h('th', { scope: 'col' }, 'Thumbprint'),
      sortHeader('clearance', 'Security Clearance', redraw), sortHeader('from', 'Valid From', redraw),
      sortHeader('expires', 'Expiration', redraw), sortHeader('used', 'Last Used', redraw),
      h('th', { scope: 'col' }, 'Database Permissions'), h('th', { scope: 'col' }, h('span', { class: 'skipvis' }, 'Actions'))));
    if (data.list) clientTable(ctx, data, tbody, count);
  };
  filter.addEventListener('input', () => { filterText = filter.value; redraw(); });
  const replaceBtn = admin ? h('button', { type: 'button', disabled: true, 'aria-describedby': 'replace-why' }, 'Replace server certificate') : null;
  const replaceWhy = h('div', { id: 'replace-why' });
  const banner = admin ? replacementBanner(() => data.reload()) : null;
  replace(main,
    h('div', { class: 'pagehead' },
      h('div', null, h('h1', null, 'Certificates'), h('p', null, `Client and server certificates of the cluster, as node ${ctx.nodeTag} sees them.`)),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', onclick: () => generateDialog(ctx, data.reload) }, 'Generate client certificate'),
        h('button', { type: 'button', onclick: () => uploadDialog(ctx, data.reload) }, 'Upload client certificate'),
        h('button', { type: 'button', onclick: exportServer }, 'Export server certificates'),
        replaceBtn)),
    replaceWhy, banner ? banner.el : null,
    h('section', { class: 'card', 'aria-labelledby': 'clients-title' },
      h('header', null, h('h2', { id: 'clients-title' }, 'Client certificates'),
        h('p', null, 'Registered with this cluster: each lets its clients in with its clearance and database permissions.')),
      h('div', { class: 'toolbar' }, filter, count),
      h('div', { class: 'tablewrap' }, h('table', { class: 'stack', id: 'client-certs' }, thead, tbody)),
      usedNote),
    rest);
  data.reload = async () => {
    try {
      const [list, lu, thumbs] = await Promise.all([
        allCertificates(), lastUsed(ctx), nodeThumbprints(ctx)]);
      Object.assign(data, { list, used: lu.latest, thumbs });
      data.clients = list.Results.filter((r) => r.SecurityClearance !== 'ClusterNode' && r.Thumbprint !== list.LoadedServerCert);
      usedNote.hidden = !lu.missing.length;
      usedNote.textContent = lu.missing.length ? `Last Used leaves out what ${lu.missing.length > 1 ? 'these nodes' : 'this node'} saw: ${lu.missing.join('; ')}.` : '';
      redraw();
      replace(rest, h('div', { class: 'grid2' }, wellKnownCard(list)), serverCard(ctx, data));
    } catch (e) {
      if (e.status === 428) return; // the two-factor screen takes over
      replace(tbody, h('tr', { class: 'placeholder' }, h('td', { colspan: 8 }, h('span', { class: 'note error', role: 'alert' }, e.message))));
    }
  };
  redraw();
  if (admin) {
    replaceBtn.onclick = () => replaceDialog(() => data.reload(), banner.poll);
    banner.poll();
    getJson('/cluster/topology').then((topo) => {
      const onLeader = topo.Leader === topo.NodeTag;
      const url = topo.Leader ? topo.Topology.AllNodes[topo.Leader] : null;
      replaceBtn.disabled = !onLeader;
      replace(replaceWhy, onLeader ? null : h('p', { class: 'note small' }, 'The server certificate is replaced on the leader. ',
        url ? h('a', { href: `${url}/studio/` }, `Open the Studio on node ${topo.Leader}`) : 'The cluster has no leader right now.'));
    }).catch(() => {});
  }
  await data.reload();
}
