#!/usr/bin/env bash
# Builds the local base images. Each image carries a label with a hash of its inputs, so
# a re-run rebuilds only what changed and otherwise costs one `docker image inspect`.
#   runlet/busybox:local  busybox-static as a rootfs (sh, sleep, echo, ...)
#   runlet/node:local     FROM scratch: the host's node binary and the libraries ldd lists
#   runlet/tasks:local    runlet/node:local plus the example task programs in tasks/
#   runlet/escape-probe:local  runlet/busybox:local plus tasks/escape-probe/probe.sh
#   runlet/task-<name>:local  one image per tasks/<name>/main.ts: the task bundled by esbuild
#                         into one file (its npm dependencies included) on runlet/node:local
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[images] %s\n' "$*" >&2; }

current_hash() { docker image inspect -f '{{ index .Config.Labels "runlet.inputs" }}' "$1" 2>/dev/null || true; }

build_busybox() {
  local bb; bb="$(command -v busybox)"
  local hash; hash="$(sha256sum "$bb" scripts/build-images.sh | sha256sum | cut -c1-16)"
  [ "$(current_hash runlet/busybox:local)" = "$hash" ] && return 0
  say "building runlet/busybox:local"
  local dir; dir="$(mktemp -d)"
  mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc" "$dir/runlet"
  cp "$bb" "$dir/bin/busybox"
  for applet in $("$bb" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>"$dir/etc/passwd"
  chmod 1777 "$dir/tmp"
  tar -C "$dir" -c . | docker import \
    -c 'ENV PATH=/bin' -c 'CMD ["sh"]' -c "LABEL runlet.inputs=$hash runlet.image=base" \
    - runlet/busybox:local >/dev/null
  rm -rf "$dir"
}

build_node() {
  local node; node="$(readlink -f "$(command -v node)")"
  local libs; libs="$(ldd "$node" | grep -o '/[^ ]*' | sort -u)"
  local hash; hash="$( (sha256sum "$node" $libs scripts/build-images.sh) | sha256sum | cut -c1-16)"
  [ "$(current_hash runlet/node:local)" = "$hash" ] && return 0
  say "building runlet/node:local (FROM scratch: $node and $(echo "$libs" | wc -l) libraries)"
  local dir; dir="$(mktemp -d)"
  mkdir -p "$dir/usr/bin" "$dir/tmp" "$dir/etc" "$dir/app"
  cp "$node" "$dir/usr/bin/node"
  for lib in $libs; do
    mkdir -p "$dir$(dirname "$lib")"
    cp -L "$lib" "$dir$lib"
  done
  # ld-linux is looked up under /lib64 and /lib; keep both paths the host uses.
  echo 'root:x:0:0:root:/root:/nonexistent' >"$dir/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/:/nonexistent' >>"$dir/etc/passwd"
  chmod 1777 "$dir/tmp"
  tar -C "$dir" -c . | docker import \
    -c 'ENV PATH=/usr/bin' -c 'WORKDIR /app' -c 'CMD ["node"]' \
    -c "LABEL runlet.inputs=$hash runlet.image=base" \
    - runlet/node:local >/dev/null
  rm -rf "$dir"
}

build_tasks() {
  [ -d tasks ] || return 0
  local hash; hash="$( (find tasks -type f -not -path '*/node_modules/*' | sort | xargs sha256sum; current_hash runlet/node:local) | sha256sum | cut -c1-16)"
  [ "$(current_hash runlet/tasks:local)" = "$hash" ] && return 0
  say "building runlet/tasks:local from tasks/"
  docker build -q --label "runlet.inputs=$hash" --label runlet.image=tasks -t runlet/tasks:local -f tasks/Dockerfile tasks >/dev/null
}

build_escape_probe() {
  local hash; hash="$( (sha256sum tasks/escape-probe/Dockerfile tasks/escape-probe/probe.sh; current_hash runlet/busybox:local) | sha256sum | cut -c1-16)"
  [ "$(current_hash runlet/escape-probe:local)" = "$hash" ] && return 0
  say "building runlet/escape-probe:local"
  docker build -q --label "runlet.inputs=$hash" --label runlet.image=probe -t runlet/escape-probe:local tasks/escape-probe >/dev/null
}

# Each task is bundled into a single CommonJS file, so its image is the base plus one file,
# however many npm packages the task uses (no node_modules in the image).
build_task_images() {
  local base; base="$(current_hash runlet/node:local)"
  for main in tasks/*/main.ts; do
    [ -f "$main" ] || continue
    local name; name="$(basename "$(dirname "$main")")"
    local image="runlet/task-$name:local"
    local hash; hash="$( (find "tasks/$name" tasks/lib tasks/task.Dockerfile package-lock.json -type f 2>/dev/null | sort | xargs sha256sum; echo "$base") | sha256sum | cut -c1-16)"
    [ "$(current_hash "$image")" = "$hash" ] && continue
    say "building $image"
    local dir=".runlet/task-build/$name"
    rm -rf "$dir" && mkdir -p "$dir"
    node_modules/.bin/esbuild "$main" --bundle --platform=node --target=node20 --format=cjs \
      --outfile="$dir/main.cjs" --log-level=warning --legal-comments=none
    docker build -q --label "runlet.inputs=$hash" --label runlet.image=task --label "runlet.task-image=$name" \
      -t "$image" -f tasks/task.Dockerfile "$dir" >/dev/null
  done
}

build_busybox
build_node
build_tasks
build_escape_probe
build_task_images
