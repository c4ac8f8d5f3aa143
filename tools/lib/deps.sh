# Shared by tools/run-tests and tools/local-cluster: installs the Debian packages Corvid needs.
# Idempotent and quiet when everything is present. Sourced, not run.

CORVID_BUILD_PACKAGES="build-essential cmake pkg-config clang clang-format libclang-rt-14-dev openssl
  libssl-dev libuv1-dev libraft-dev libmsgpack-dev librocksdb-dev libhttp-parser-dev
  libjansson-dev liboath-dev libzip-dev libqrencode-dev libcmocka-dev unzip curl"
# What the tests and tools/chaos run besides the build: the cluster scripts' Python, the chaos
# harness's namespaces (iproute2, util-linux), partitions (nftables) and clocks (faketime), and
# what a two-factor user has: an authenticator (oathtool) and a QR reader (zbarimg, with
# rsvg-convert to render the SVG it reads), and Node.js with npm for RavenDB's Node.js client
# (tests/compat, installed by tests/compat/install.sh).
CORVID_TEST_PACKAGES="python3 iproute2 util-linux nftables faketime oathtool zbar-tools
  librsvg2-bin nodejs npm"

# corvid_missing_packages PKG...: those neither installed nor provided by an installed package
# (NodeSource's nodejs provides npm, and conflicts with Debian's).
corvid_missing_packages() {
  local missing="" p provided
  provided=" $(dpkg-query -W -f='${db:Status-Abbrev}|${Provides}\n' 2>/dev/null |
    sed -n 's/^ii *|//p' | tr ',' '\n' | sed 's/ *(.*//; s/^ *//' | tr '\n' ' ') "
  for p in "$@"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ] &&
      [[ "$provided" != *" $p "* ]]; then
      missing="$missing $p"
    fi
  done
  echo "$missing"
}

# corvid_install_packages PKG...: apt-get installs whatever of PKG... is missing.
corvid_install_packages() {
  local missing
  missing=$(corvid_missing_packages "$@")
  [ -z "$missing" ] && return 0
  echo "corvid: installing Debian packages:$missing"
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "corvid: need root (or sudo) to install:$missing" >&2; return 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || { echo "corvid: apt-get update failed" >&2; return 1; }
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
    { echo "corvid: apt-get install failed for:$missing" >&2; return 1; }
}

# What the Studio's browser test (tests/studio/) runs: Debian's Chromium, NSS's tools (pk12util
# and certutil, to put a certificate in Chromium's own store), and playwright-core from npm,
# pinned by tests/studio/package-lock.json (it needs Node.js 20 or later; npm comes with
# Node.js where it is not Debian's).
CORVID_STUDIO_PACKAGES="chromium libnss3-tools"

# corvid_install_studio_deps: the packages above, then `npm ci` in tests/studio when its
# node_modules is missing or older than the lock file. Run from the repository's root.
corvid_install_studio_deps() {
  # shellcheck disable=SC2086
  corvid_install_packages $CORVID_STUDIO_PACKAGES || return 1
  if ! command -v npm >/dev/null; then
    corvid_install_packages nodejs npm || return 1
  fi
  local dir=tests/studio
  if [ ! -f "$dir/node_modules/playwright-core/package.json" ] ||
    [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "corvid: installing playwright-core in $dir (npm ci)"
    npm ci --prefix "$dir" --no-audit --no-fund >/dev/null ||
      { echo "corvid: npm ci failed in $dir" >&2; return 1; }
  fi
}
