// The Cluster page: every node with its role, state, term, applied index and health, the
// leader; adding and removing nodes (Cluster Admin, on the leader); the CA chain and the CRL.
import { request, getJson, NodeDown } from './api.js';
import { h, replace, field, toast, openDialog } from './ui.js';
import { thumbCell } from './certs.js';

const REFRESH_MS = 3000;
let timer = null;

export function leaveCluster() {
  clearTimeout(timer);
  timer = null;
}

function roleOf(topo, tag) {
  const t = topo.Topology;
  if (tag in (t.Members || {})) return 'Member';
  if (tag in (t.Promotables || {})) return 'Promotable';
  if (tag in (t.Watchers || {})) return 'Watcher';
  return '—';
}

// A certificate's expiry as the node reports it (CertificateExpiry: RavenDB's levels,
// Warning within 20 days, Error within 3).
function expiry(e) {
  if (!e) return '—';
  const cls = { Ok: 'good', Warning: 'warn', Error: 'bad', Expired: 'bad' }[e.Level] || '';
  const text = e.Level === 'Expired' ? 'Expired' : `${e.DaysLeft} day${e.DaysLeft === 1 ? '' : 's'} left`;
  return h('span', { class: `badge ${cls}`, title: `Valid until ${e.NotAfter}` }, text);
}

function health(info, err) {
  if (err) return h('span', { class: 'badge bad', title: err.message }, 'Unreachable');
  if (info.Serving) return h('span', { class: 'badge good' }, 'Serving');
  return h('span', { class: 'badge warn', title: 'caught up and holding a read lease: not now' }, 'Not serving');
}

async function addDialog(ctx, refresh) {
  const url = h('input', { type: 'url', name: 'url', required: true, placeholder: 'https://10.0.0.4:8080', pattern: 'https://.+' });
  const tag = h('input', { type: 'text', name: 'tag', pattern: '[A-Z]{1,4}', maxlength: 4, placeholder: 'D' });
  const tp = h('input', { type: 'text', name: 'thumbprint', pattern: '[0-9A-Fa-f]{40}', class: 'mono' });
  const added = await openDialog({
    title: 'Add a node',
    submit: 'Add node',
    content: [
      h('p', null, 'The node must be running, passive (started without Cluster.Bootstrap, with an empty DataDir), and reachable from the leader.'),
      field('Node URL', url), field('Tag', tag, 'One to four letters; empty: the node names itself.'),
      field('Expected thumbprint', tp, 'Needed when its certificate is not issued by the cluster CA: check it out of band.'),
    ],
    onSubmit: async () => {
      const res = await request('PUT', '/admin/cluster/node', {
        query: { url: url.value.trim(), tag: tag.value.trim() || undefined, expectedThumbprint: tp.value.trim() || undefined },
      });
      return res.json();
    },
  });
  if (!added) return;
  toast(`Node ${added.NodeTag} added: ${added.Message}`);
  refresh();
}

async function removeDialog(ctx, refresh, tag) {
  const done = await openDialog({
    title: `Remove node ${tag}?`,
    submit: `Remove node ${tag}`,
    danger: true,
    content: [h('p', null, `Node ${tag} leaves the cluster: it no longer votes nor takes part in replication, and its certificate is no longer trusted as a node's.`)],
    onSubmit: async () => {
      await request('DELETE', '/admin/cluster/node', { query: { nodeTag: tag } });
      return true;
    },
  });
  if (!done) return;
  toast(`Node ${tag} removed.`);
  refresh();
}

export async function renderCluster(main, ctx) {
  leaveCluster();
  document.title = 'Cluster · Corvid Studio';
  const admin = ctx.me.SecurityClearance === 'ClusterAdmin' || ctx.me.SecurityClearance === 'ClusterNode';
  const summary = h('dl', { class: 'stats', id: 'cluster-summary' }, h('div', null, h('dt', null, 'Leader'), h('dd', null, '…')));
  const tbody = h('tbody', null, h('tr', { class: 'placeholder' }, h('td', { colspan: 10 }, 'Loading the cluster…')));
  const leaderNote = h('div');
  const addBtn = admin ? h('button', { type: 'button', class: 'primary' }, 'Add node') : null;
  const err = h('div', { role: 'alert' });
  const caExpiry = h('p', { id: 'ca-expiry' });
  replace(main,
    h('div', { class: 'pagehead' },
      h('div', null, h('h1', null, 'Cluster'), h('p', null, `The nodes of the cluster, as node ${ctx.nodeTag} sees them; refreshed every few seconds.`)),
      h('div', { class: 'actions' }, addBtn)),
    leaderNote, err,
    h('section', { class: 'card', 'aria-labelledby': 'nodes-title' },
      h('header', null, h('h2', { id: 'nodes-title' }, 'Nodes'), summary),
      h('div', { class: 'tablewrap' }, h('table', { class: 'stack', id: 'cluster-nodes' },
        h('thead', null, h('tr', null, ['Tag', 'URL', 'Role', 'State', 'Term', 'Applied index', 'Health', 'Thumbprint', 'Certificate', ''].map((t) => h('th', { scope: 'col' }, t)))),
        tbody))),
    h('section', { class: 'card', 'aria-labelledby': 'ca-title' },
      h('header', null, h('h2', { id: 'ca-title' }, 'Certificate authority'),
        h('p', null, 'Every certificate the cluster issues chains to its root; the CRL lists what was revoked.')),
      caExpiry,
      h('div', { class: 'actions' },
        h('a', { class: 'button', href: '/ca/certificate', download: 'corvid-ca-chain.pem' }, 'Download the CA chain (PEM)'),
        h('a', { class: 'button', href: '/ca/crl', download: 'corvid.crl' }, 'Download the CRL'))));

  const refresh = async () => {
    clearTimeout(timer);
    try {
      const topo = await getJson('/cluster/topology');
      const tags = Object.keys(topo.Topology.AllNodes || {}).sort();
      const infos = await Promise.allSettled(tags.map((t) => getJson('/cluster/node-info', { nodeTag: t })));
      const leader = topo.Leader;
      const onLeader = leader === topo.NodeTag;
      const leaderUrl = leader ? topo.Topology.AllNodes[leader] : null;
      replace(summary,
        h('div', null, h('dt', null, 'Leader'), h('dd', { id: 'leader' }, leader ? `Node ${leader}` : 'none (no quorum, or an election is under way)')),
        h('div', null, h('dt', null, 'Term'), h('dd', null, String(topo.CurrentTerm))),
        h('div', null, h('dt', null, 'Nodes'), h('dd', null, String(tags.length))));
      replace(leaderNote, admin && !onLeader ? h('p', { class: 'note' }, 'Nodes are added and removed on the leader. ',
        leaderUrl ? h('a', { href: `${leaderUrl}/studio/#/cluster` }, `Open the Studio on node ${leader}`) : 'The cluster has no leader right now.') : null);
      if (addBtn) {
        addBtn.disabled = !onLeader;
        addBtn.onclick = () => addDialog(ctx, refresh);
      }
      replace(tbody, tags.map((t, i) => {
        const r = infos[i];
        const info = r.status === 'fulfilled' ? r.value : null;
        const url = topo.Topology.AllNodes[t];
        return h('tr', { 'data-node': t },
          h('td', { 'data-label': 'Tag' }, h('strong', null, t), t === topo.NodeTag ? h('span', { class: 'muted small' }, ' (this node)') : null),
          h('td', { 'data-label': 'URL' }, h('a', { href: `${url}/studio/` }, url)),
          h('td', { 'data-label': 'Role' }, roleOf(topo, t)),
          h('td', { 'data-label': 'State' }, info ? info.CurrentState : '—', t === leader ? ' ★' : null),
          h('td', { 'data-label': 'Term' }, info && info.CurrentTerm !== undefined ? String(info.CurrentTerm) : '—'),
          h('td', { 'data-label': 'Applied index' }, info && info.AppliedIndex !== undefined ? String(info.AppliedIndex) : '—'),
          h('td', { 'data-label': 'Health' }, health(info, r.status === 'rejected' ? r.reason : null)),
          h('td', { 'data-label': 'Thumbprint' }, info ? thumbCell(info.Thumbprint) : '—'),
          h('td', { 'data-label': 'Certificate' }, expiry(info && info.CertificateExpiry && info.CertificateExpiry.NodeCertificate)),
          h('td', { class: 'actions-cell' }, admin && onLeader && t !== topo.NodeTag
            ? h('button', { type: 'button', class: 'small', 'aria-label': `Remove node ${t}`, onclick: () => removeDialog(ctx, refresh, t) }, 'Remove') : null));
      }));
      replace(err);
      const here = infos[tags.indexOf(topo.NodeTag)];
      const ca = here && here.status === 'fulfilled' && here.value.CertificateExpiry ? here.value.CertificateExpiry.IssuingCA : null;
      replace(caExpiry, ca ? ['The issuing CA is valid until ', h('strong', null, ca.NotAfter.slice(0, 10)), ' ', expiry(ca)] : null);
    } catch (e) {
      if (e.status === 428) return;
      // a node that does not answer is the banner's to say; the page keeps asking
      replace(err, e instanceof NodeDown ? null : h('p', { class: 'note error' }, e.message));
    }
    if (document.body.contains(tbody)) timer = setTimeout(refresh, REFRESH_MS);
  };
  await refresh();
}
