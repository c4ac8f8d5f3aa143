// A browser as a user has one: Debian's Chromium with the client certificate imported into its
// own certificate store (NSS, the user's ~/.pki/nssdb, with pk12util) and chosen by Chromium
// itself for the cluster's URLs through the AutoSelectCertificateForUrls content setting, the
// one that policy sets, kept in the profile so that no root is needed. The cluster's root CA
// is trusted in the same store, so that no TLS error is ignored. Nothing of Playwright's own
// certificate handling is used: the TLS handshake is Chromium's.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// profile(dir, {pfx, password, rootCa, origins}): a HOME and a user data directory under dir;
// pfx null gives a browser without any client certificate.
export function profile(dir, { pfx, password = '', rootCa, origins }) {
  rmSync(dir, { recursive: true, force: true });
  const home = join(dir, 'home');
  const nss = join(home, '.pki', 'nssdb');
  const data = join(dir, 'chromium');
  mkdirSync(nss, { recursive: true });
  mkdirSync(join(data, 'Default'), { recursive: true });
  execFileSync('certutil', ['-N', '-d', `sql:${nss}`, '--empty-password'], { stdio: 'pipe' });
  if (rootCa) execFileSync('certutil', ['-A', '-d', `sql:${nss}`, '-n', 'Corvid test root', '-t', 'C,,', '-i', rootCa], { stdio: 'pipe' });
  if (pfx) execFileSync('pk12util', ['-i', pfx, '-d', `sql:${nss}`, '-W', password], { stdio: 'pipe' });
  // AutoSelectCertificateForUrls: for each origin, the first certificate that matches the
  // server's request (filter {}: the store holds one).
  const auto = {};
  for (const o of origins) auto[`${o},*`] = { setting: { filters: [{}] } };
  writeFileSync(join(data, 'Default', 'Preferences'), JSON.stringify({
    profile: { content_settings: { exceptions: { auto_select_certificate: auto } } },
    download: { prompt_for_download: false },
  }));
  return { home, data, nss };
}

export async function launch(p, { width = 1280, height = 800 } = {}) {
  const ctx = await chromium.launchPersistentContext(p.data, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width, height },
    env: { ...process.env, HOME: p.home },
    // --no-sandbox: the tests run as root (CI), where Chromium's sandbox refuses to start
    args: ['--no-sandbox', '--no-first-run', '--disable-features=Translate,MediaRouter', '--password-store=basic'],
  });
  return ctx;
}
