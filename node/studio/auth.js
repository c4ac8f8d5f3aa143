// The pages before the Studio proper: a browser whose certificate the cluster does not know
// (RavenDB's auth-error page), and the two-factor clearance screen.
import { request, getJson } from './api.js';
import { h, replace, field, checkbox } from './ui.js';

// main: where to draw; message: the server's own refusal (GET /cluster/topology's 403).
export function renderNoAccess(main, message) {
  const pfx = 'admin.client.certificate.pfx';
  replace(main, h('section', { class: 'center', 'aria-labelledby': 'noaccess-title' },
    h('h1', { id: 'noaccess-title' }, 'Your browser presented no certificate this cluster knows'),
    h('div', { class: 'note error', role: 'alert' },
      h('strong', null, 'The node says: '), message || 'Access to the server was denied.'),
    h('div', { class: 'card' },
      h('p', null, 'Corvid lets in clients by their X.509 client certificate, as RavenDB does. ' +
        'The Studio needs one registered in this cluster, imported into this browser:'),
      h('ol', { class: 'steps' },
        h('li', null, 'Get a client certificate as a ', h('code', null, '.pfx'), ' file from an ' +
          'administrator of the cluster (Studio: "Generate client certificate", or ',
          h('code', null, 'corvid certs generate'), '). For the local cluster of ',
          h('code', null, 'tools/local-cluster up'), ' it is ', h('code', null, `var/local/admin/${pfx}`), '.'),
        h('li', null, h('strong', null, 'Chromium or Chrome: '), 'Settings → Privacy and security → ' +
          'Security → Manage certificates → Your certificates → Import, choose the .pfx and type ' +
          'its password (nothing when it has none). On Linux, from a terminal: ',
          h('code', null, `pk12util -d sql:$HOME/.pki/nssdb -i ${pfx}`)),
        h('li', null, h('strong', null, 'Firefox: '), 'Settings → Privacy & Security → Certificates → ' +
          'View Certificates… → Your Certificates → Import…. Firefox takes only a .pfx with a ' +
          'password; give it one with ',
          h('code', null, 'openssl pkcs12 -in admin.pfx -nodes -out admin.pem'), ' then ',
          h('code', null, 'openssl pkcs12 -export -in admin.pem -out with-password.pfx'), '.'),
        h('li', null, 'Close every window of the browser and open it again (or open a private ' +
          'window): a browser keeps the certificate it chose for a site until then. When it asks, ' +
          'choose the imported certificate.')),
      h('p', { class: 'muted small' }, 'A certificate that was deleted (revoked) or has expired is ' +
        'refused the same way: ask for a new one.'),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onclick: () => location.reload() }, 'Try again')))));
  document.title = 'Access denied · Corvid Studio';
}

// The two-factor clearance screen (seeds: A. Authentication Code; B. session duration and
// "only this browser"). onDone() once the node granted the session.
export async function renderTwoFactor(main, me, onDone) {
  let cfg = { DefaultTwoFactorSessionDurationInMin: 120, MaxTwoFactorSessionDurationInMin: 1440 };
  try { cfg = await getJson('/authentication/2fa/configuration'); } catch { /* the defaults */ }
  const code = h('input', {
    type: 'text', name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', required: true,
    pattern: '[0-9]{6}', maxlength: 6, placeholder: '123456', class: 'mono',
  });
  const duration = h('input', {
    type: 'number', name: 'duration', min: 1, max: cfg.MaxTwoFactorSessionDurationInMin,
    value: cfg.DefaultTwoFactorSessionDurationInMin, required: true,
  });
  const limit = checkbox('Only this browser: the session holds for this browser alone (a cookie). ' +
    'Without it, any client that presents this certificate to the cluster is let in until the session ends.',
  { name: 'limits', checked: true });
  const err = h('div', { class: 'note error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Continue');
  const form = h('form', { class: 'card', novalidate: true },
    h('h2', null, 'A. Authentication code'),
    field('Code from your authenticator app', code, 'Six digits, from the app where you scanned this certificate\'s QR code.'),
    h('h2', null, 'B. Additional settings'),
    field('Session duration (minutes)', duration, `At most ${cfg.MaxTwoFactorSessionDurationInMin} minutes.`),
    limit.el, err, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    err.hidden = true;
    submit.disabled = true;
    try {
      await request('POST', '/authentication/2fa', {
        query: { hasLimits: limit.input.checked, sessionDurationInMin: duration.value },
        json: { Token: code.value.trim() },
      });
      onDone();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
      code.select();
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, h('section', { class: 'center', 'aria-labelledby': 'tfa-title' },
    h('h1', { id: 'tfa-title' }, 'Two-factor authentication'),
    h('p', null, 'The certificate ', h('strong', null, me.Name), ' requires two-factor authentication: ' +
      'enter a code from your authenticator app to open the Studio.'),
    form));
  document.title = 'Two-factor authentication · Corvid Studio';
  code.focus();
}
