#!/usr/bin/env bash
# Idempotent set-up shared by `npm start` and `npm test`: installs what is missing
# (Debian packages, node modules, the TypeScript build), starts a Docker engine if none
# answers, and builds the local images the example tasks and tests use. When nothing is
# missing it only checks, which costs a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DATA="${RUNLET_DATA:-$ROOT/.runlet}"
mkdir -p "$DATA"
say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages ---------------------------------------------------------------
# command → package that provides it. docker-compose validates docker-compose.yml in a
# test (Debian's v1; `docker compose config` where the v2 plugin exists). chromium drives the dashboard's browser tests
# (playwright-core launches /usr/bin/chromium; it never downloads a browser of its own).
# promtool (Debian's prometheus package) lints the live /metrics page in a test.
# redis-sentinel runs the Sentinel failover test (REDIS_URL with sentinels).
declare -A NEED=( [dockerd]=docker.io [redis-server]=redis-server [busybox]=busybox-static [chromium]=chromium [docker-compose]=docker-compose [promtool]=prometheus [redis-sentinel]=redis-sentinel )
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
# busybox-static, not the dynamic busybox: the image below is FROM scratch.
if command -v busybox >/dev/null 2>&1 && ldd "$(command -v busybox)" >/dev/null 2>&1; then
  missing+=(busybox-static)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing packages: ${missing[*]}. Install them (Debian: sudo apt-get install ${missing[*]}) or run this as root on Debian."
  fi
  say "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The prometheus package also enables a Prometheus server (:9090) where systemd runs
  # services; only promtool is wanted, so a server this install started is stopped again.
  # (In a container, policy-rc.d or the lack of systemd means nothing was started.)
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ] && systemctl is-enabled --quiet prometheus.service 2>/dev/null; then
    say "disabling the prometheus.service its package enabled (set-up only wants promtool)"
    systemctl disable --now prometheus.service >/dev/null 2>&1 || say "could not disable prometheus.service; stop it with: systemctl disable --now prometheus"
  fi
fi

# --- node modules and build -----------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm install` installs exactly the tree in package-lock.json (and, with --no-save,
  # never rewrites it). Not `npm ci`: npm 11 refuses a lockfile that lacks entries for
  # optional packages of other platforms (msgpackr-extract's darwin/win32 builds), which
  # it does not write on Linux in the first place.
  say "npm install (from package-lock.json)"
  npm install --no-save --no-audit --no-fund --loglevel=error >/dev/null
fi
if [ ! -f dist/src/cli.js ] || [ -n "$(find src bench tsconfig.json -newer dist/.build-stamp 2>/dev/null | head -1)" ] || [ ! -f dist/.build-stamp ]; then
  say "building TypeScript"
  rm -rf dist
  npx tsc -p tsconfig.json
  touch dist/.build-stamp
fi

# --- Docker engine --------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    die "no Docker engine answers and only root can start one here: start dockerd or set DOCKER_HOST."
  fi
  say "starting dockerd (log: $DATA/dockerd.log)"
  nohup dockerd >"$DATA/dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || die "dockerd did not answer within 60s; see $DATA/dockerd.log"
fi

# --- local images (never pulled: no registry is reachable) ----------------------------
bash scripts/build-images.sh
say "ready"
