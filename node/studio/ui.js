// DOM helpers of the Studio: elements built from data (never HTML strings), dialogs on
// <dialog> (keyboard: Tab stays inside, Escape closes), toasts, dates.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

let uid = 0;
export function id(prefix) { uid += 1; return `${prefix}-${uid}`; }

// A labelled field: label, control, optional hint (tied by aria-describedby).
export function field(labelText, control, hint) {
  if (!control.id) control.id = id('f');
  const parts = [h('label', { for: control.id }, labelText), control];
  if (hint) {
    const hid = id('hint');
    control.setAttribute('aria-describedby', hid);
    parts.push(h('div', { class: 'hint', id: hid }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

export function checkbox(labelText, attrs) {
  const input = h('input', { type: 'checkbox', ...attrs });
  return { input, el: h('label', { class: 'check' }, input, h('span', null, labelText)) };
}

export function select(options, value, attrs) {
  const s = h('select', attrs);
  for (const [v, label] of options) s.append(h('option', { value: v, selected: v === value }, label));
  return s;
}

export function toast(message, kind) {
  const t = h('div', { class: `toast ${kind || ''}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  document.getElementById('toasts').append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 9000 : 5000);
}

// openDialog({title, content, submit, danger, onSubmit}): a modal form. onSubmit(form) may
// throw: its message is shown in the dialog, which stays open. Resolves when it closes.
export function openDialog({ title, content, submit, danger, onSubmit, cancel = 'Cancel', wide }) {
  return new Promise((resolve) => {
    const err = h('div', { class: 'note error', role: 'alert', hidden: true });
    const ok = h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, submit || 'OK');
    const buttons = [cancel ? h('button', { type: 'button', value: 'cancel', onclick: () => dlg.close() }, cancel) : null];
    if (onSubmit) buttons.push(ok);
    const titleId = id('dlg');
    const form = h('form', { method: 'dialog', novalidate: true },
      h('h2', { id: titleId }, title), content, err, h('div', { class: 'buttons' }, buttons));
    const dlg = h('dialog', { 'aria-labelledby': titleId, class: wide ? 'wide' : null }, form);
    let result;
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!onSubmit) { dlg.close(); return; }
      if (!form.reportValidity()) return;
      err.hidden = true;
      ok.disabled = true;
      const label = ok.textContent;
      ok.textContent = `${label}…`;
      try {
        result = await onSubmit(form);
        dlg.close();
      } catch (e) {
        err.textContent = e.message;
        err.hidden = false;
      } finally {
        ok.disabled = false;
        ok.textContent = label;
      }
    });
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    document.body.append(dlg);
    dlg.showModal();
    const first = form.querySelector('input:not([type=hidden]):not([disabled]), select, textarea');
    if (first) first.focus();
  });
}

export function copyButton(text, what) {
  return h('button', {
    type: 'button', class: 'small copy', 'aria-label': `Copy ${what}`, title: `Copy ${what}`,
    onclick: async (ev) => {
      const b = ev.currentTarget;
      try {
        await navigator.clipboard.writeText(text);
        b.textContent = 'Copied';
      } catch {
        // no clipboard (an insecure context or a denied permission): select it instead
        const r = document.createRange();
        r.selectNodeContents(b.previousElementSibling);
        getSelection().removeAllRanges();
        getSelection().addRange(r);
        b.textContent = 'Selected';
      }
      setTimeout(() => { b.textContent = 'Copy'; }, 1500);
    },
  }, 'Copy');
}

// .NET's round-trip dates ("2031-12-02T00:00:00.0000000Z") as Date.
export function parseDate(s) {
  if (!s) return null;
  const d = new Date(String(s).replace(/(\.\d{3})\d+/, '$1'));
  return Number.isNaN(d.getTime()) ? null : d;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const timeFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const clockFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
export function fmtClock(d) { return d ? clockFmt.format(d) : '—'; }
export function fmtDate(d) { return d ? dateFmt.format(d) : '—'; }
export function fmtTime(d) { return d ? timeFmt.format(d) : '—'; }

export function ago(d, now = Date.now()) {
  const s = Math.round((now - d.getTime()) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

export const CLEARANCE_LABEL = {
  ClusterAdmin: 'Cluster Admin', ClusterNode: 'Cluster Node', Operator: 'Operator', ValidUser: 'User',
};
export function clearanceBadge(cl) {
  return h('span', { class: `badge ${cl}` }, CLEARANCE_LABEL[cl] || cl);
}
