// Corvid Studio: who the browser is (its client certificate), then the page it asked for.
// Everything goes through the public HTTP API of the node that served the Studio.
import { request, getJson, on, ApiError, NodeDown } from './api.js';
import { h, replace, toast, parseDate, fmtTime, clearanceBadge } from './ui.js';
import { renderNoAccess, renderTwoFactor } from './auth.js';
import { renderCertificates } from './certs.js';
import { renderCluster, leaveCluster } from './cluster.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const whoEl = document.getElementById('whoami');
let ctx = null; // {me, nodeTag, nodes: [{tag, url}]}
let showingTwoFactor = false;
let booting = false;

// The node stopped answering: say so, and name the others (known from the last topology).
on('down', () => {
  const others = (ctx ? ctx.nodes : []).filter((n) => n.tag !== ctx.nodeTag);
  replace(banner, h('strong', null, `This node (${ctx ? ctx.nodeTag : location.host}) does not answer. `),
    others.length ? ['Open the Studio on another node of the cluster:',
      h('ul', null, others.map((n) => h('li', null, h('a', { href: `${n.url}/studio/${location.hash}` }, `Node ${n.tag} — ${n.url}`))))]
      : 'Check that it runs, then reload the page.');
  banner.hidden = false;
  banner.dataset.down = '1';
});

on('up', () => {
  if (banner.dataset.down) {
    banner.hidden = true;
    delete banner.dataset.down;
  }
});

on('twofactor', () => {
  if (ctx && !showingTwoFactor && !booting) boot();
});

function drawWho() {
  if (!ctx) { replace(whoEl); return; }
  const { me } = ctx;
  const until = parseDate(me.TwoFactorExpirationDate);
  replace(whoEl,
    ctx.nodeTag ? h('span', { class: 'node', title: location.origin }, `Node ${ctx.nodeTag}`) : null,
    h('span', { class: 'who', 'data-testid': 'me' }, me.Name), clearanceBadge(me.SecurityClearance),
    until ? [h('span', { class: 'node' }, `2FA session until ${fmtTime(until)}`),
      h('button', {
        type: 'button', class: 'small',
        onclick: async () => {
          try { await request('DELETE', '/authentication/2fa'); } catch (e) { toast(e.message, 'error'); }
          boot();
        },
      }, 'End session')] : null);
}

function route() {
  if (!ctx || showingTwoFactor) return;
  const page = (location.hash.match(/^#\/(\w+)/) || [])[1] || 'certificates';
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  leaveCluster();
  const draw = page === 'cluster' ? renderCluster : renderCertificates;
  draw(main, ctx).catch(showError);
}

function showError(e) {
  if (e instanceof ApiError && e.status === 428) return;
  if (e instanceof NodeDown) return; // the banner says it
  const others = ctx ? ctx.nodes.filter((n) => n.tag !== ctx.nodeTag) : [];
  replace(main, h('section', { class: 'center' }, h('h1', null, 'The Studio cannot show this page'),
    h('p', { class: 'note error', role: 'alert' }, e.message),
    others.length ? h('p', null, 'The Studio on another node: ', others.map((n, i) =>
      [i ? ', ' : null, h('a', { href: `${n.url}/studio/${location.hash}` }, `node ${n.tag}`)])) : null,
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onclick: () => boot() }, 'Try again'))));
}

// Who is this browser? whoami answers 204 for a certificate the cluster does not know (or
// none); a registered certificate that needs its two-factor session gets the code screen.
async function boot() {
  booting = true;
  try {
    await who();
  } finally {
    booting = false;
  }
}

async function who() {
  leaveCluster();
  showingTwoFactor = false;
  let me;
  try {
    me = await getJson('/certificates/whoami');
  } catch (e) {
    showError(e);
    return;
  }
  if (!me) {
    let message = '';
    try {
      await getJson('/cluster/topology');
    } catch (e) {
      message = e.message;
    }
    ctx = null;
    drawWho();
    renderNoAccess(main, message);
    return;
  }
  let topo = null;
  try {
    topo = await getJson('/cluster/topology');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 428)) { showError(e); return; }
    ctx = { me, nodeTag: '', nodes: (ctx && ctx.nodes) || [] };
    showingTwoFactor = true;
    drawWho();
    await renderTwoFactor(main, me, () => { boot(); });
    return;
  }
  const nodes = Object.entries(topo.Topology.AllNodes || {}).map(([tag, url]) => ({ tag, url })).sort((a, b) => a.tag.localeCompare(b.tag));
  ctx = { me, nodeTag: topo.NodeTag, nodes };
  banner.hidden = true;
  drawWho();
  route();
}

// A node that goes down is told on every page within a few seconds, not only at the next
// click: a light request (node-info, which reads nothing of the trust state) while the page is
// shown. Its failure raises the banner; an answer takes it down again.
const HEARTBEAT_MS = 5000;
setInterval(() => {
  if (ctx && document.visibilityState === 'visible') request('GET', '/cluster/node-info').catch(() => {});
}, HEARTBEAT_MS);

window.addEventListener('hashchange', route);
boot();
