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

# What the Studio's browser test (tests/studio/) runs besides Node.js: Debian's Chromium and
# NSS's tools (pk12util and certutil, to put a certificate into Chromium's own store).
CORVID_STUDIO_PACKAGES="chromium libnss3-tools"

# corvid_npm_ci DIR: `npm ci` in DIR unless DIR/node_modules was installed from the same
# package-lock.json (a copy of it is kept there as the stamp); quiet when it was.
corvid_npm_ci() {
  local dir=$1 out
  if cmp -s "$dir/package-lock.json" "$dir/node_modules/.corvid-lock.json"; then return 0; fi
  echo "corvid: installing the npm packages of $dir (npm ci)"
  if ! out=$(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error 2>&1); then
    printf '%s\n' "$out" >&2
    echo "corvid: npm ci failed in $dir" >&2
    return 1
  fi
  cp "$dir/package-lock.json" "$dir/node_modules/.corvid-lock.json"
}
