#!/bin/sh
# The escape probe: run with runlet's isolation defaults, it tries each wall a run must not
# get through and prints one line per check: `PASS <name> <detail>` when the wall held,
# `FAIL <name> <detail>` when it fell. Exit 0 only if every check passed.
#
# Targets come from the env (runlet.yaml passes them from the daemon's env):
#   PROBE_TCP      space-separated host:port that must NOT be reachable (the daemon's Redis
#                  on loopback, the ops API...), each tried at 127.0.0.1 and at the host's
#                  bridge address (host.docker.internal)
#   PROBE_CONTROL  host:port that MUST be reachable: proves this probe's connect test can
#                  succeed, so a refused connection above means a wall, not a broken nc
#   PROBE_PATHS    space-separated host paths that must not exist in here (Redis's socket)
# busybox only (sh, nc, find, dd): the image is runlet/busybox:local plus this file.

failed=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failed=1; }
check() { name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }

# --- who we are -------------------------------------------------------------------------
uid=$(id -u)
if [ "$uid" != 0 ]; then pass "not-root uid=$uid gid=$(id -g)"; else fail "not-root uid=0"; fi

status_field() { sed -n "s/^$1:[[:space:]]*//p" /proc/self/status; }
nnp=$(status_field NoNewPrivs)
[ "$nnp" = 1 ] && pass "no-new-privileges NoNewPrivs=$nnp" || fail "no-new-privileges NoNewPrivs=$nnp"
for cap in CapEff CapPrm CapBnd; do
  v=$(status_field $cap)
  [ "$v" = 0000000000000000 ] && pass "no-capabilities $cap=$v" || fail "no-capabilities $cap=$v"
done

# --- the filesystem ---------------------------------------------------------------------
if (echo x > /escape-probe) 2>/dev/null; then fail "read-only-root wrote /escape-probe"; else pass "read-only-root writing / refused"; fi
if (echo x > /etc/escape-probe) 2>/dev/null; then fail "read-only-etc wrote /etc/escape-probe"; else pass "read-only-etc writing /etc refused"; fi
if echo ok > /runlet/probe && [ "$(cat /runlet/probe)" = ok ]; then pass "runlet-writable /runlet"; else fail "runlet-writable /runlet not writable"; fi
if echo ok > /tmp/small; then pass "tmp-writable /tmp"; else fail "tmp-writable /tmp not writable"; fi
# /tmp is a tmpfs of 64m: 80 MiB must not fit.
# (dd's complaint is kept in a variable: a file in the full /tmp could not hold it.)
err=$(dd if=/dev/zero of=/tmp/fill bs=1048576 count=80 2>&1)
written=$(($(stat -c %s /tmp/fill 2>/dev/null || echo 0) / 1048576))
if [ "$written" -lt 80 ] && echo "$err" | grep -q 'No space left'; then
  pass "tmp-size-limited wrote ${written}MiB of 80MiB: $(df -m /tmp | awk 'NR==2 {print $2 "MiB tmpfs"}')"
else
  fail "tmp-size-limited wrote ${written}MiB of 80MiB: $err"
fi
rm -f /tmp/fill

# --- what is mounted --------------------------------------------------------------------
socks=$(find / -path /proc -prune -o -name docker.sock -print 2>/dev/null)
[ -z "$socks" ] && pass "no-docker-socket" || fail "no-docker-socket found: $socks"
unix=$(find / \( -path /proc -o -path /sys \) -prune -o -type s -print 2>/dev/null)
[ -z "$unix" ] && pass "no-unix-sockets" || fail "no-unix-sockets found: $unix"
for p in $PROBE_PATHS; do
  [ -e "$p" ] && fail "host-path-absent $p exists" || pass "host-path-absent $p"
done

# --- the network ------------------------------------------------------------------------
# reach HOST PORT: 0 connected (nc got through, or the other side said anything), 1 refused
# or timed out (a wall), 2 could not tell (the name did not resolve...): never a PASS.
reach() {
  out=$(echo PING | nc -w 2 "$1" "$2" 2>&1); rc=$?
  [ $rc = 0 ] || [ -n "$(echo "$out" | grep -v '^nc: ')" ] && return 0
  echo "$out" | grep -qiE 'refused|timed out|unreachable|no route' && return 1
  return 2
}
if [ -n "$PROBE_CONTROL" ]; then
  h=${PROBE_CONTROL%:*}; p=${PROBE_CONTROL##*:}
  if reach "$h" "$p"; then pass "control-reachable $h:$p (the connect test can succeed)"; else fail "control-reachable $h:$p: $out"; fi
fi
for target in $PROBE_TCP; do
  name=${target%%=*}; port=${target##*:}
  for h in 127.0.0.1 host.docker.internal; do
    reach "$h" "$port"
    case $? in
      0) fail "unreachable-$name $h:$port connected: $out" ;;
      1) pass "unreachable-$name $h:$port ($(echo "$out" | tail -n 1))" ;;
      *) fail "unreachable-$name $h:$port could not be tried: $out" ;;
    esac
  done
done

# --- processes (last: it fills the pids limit for a moment) ------------------------------
# Forks sleeps until the kernel refuses one, in a subshell (a refused fork ends it), noting
# each pid, then kills them with the shell's own kill (no fork needed).
max=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)
( n=0; while [ $n -lt 5000 ]; do sleep 30 & echo $! >> /tmp/pids; n=$((n + 1)); done ) 2>/tmp/fork.err
forked=$(wc -l < /tmp/pids)
while read -r pid; do kill "$pid" 2>/dev/null; done < /tmp/pids
if grep -q "can't fork" /tmp/fork.err && [ "$forked" -lt "$max" ]; then
  pass "pids-limit forks refused after $forked processes (pids.max $max)"
else
  fail "pids-limit forked $forked processes (pids.max $max)"
fi

exit $failed
