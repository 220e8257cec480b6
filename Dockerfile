# Images for docker-compose.yml, where a registry is reachable (the node and busybox base
# images are pulled). Locally, scripts/build-images.sh builds the same tags without any
# registry; this file is not used there.
#
#   target runlet   the daemon                                   runlet/runlet:local
#   target task     one example task, --build-arg TASK=<name>   runlet/task-<name>:local
#   target busybox  the proof-of-life task's image               runlet/busybox:local
#   target hello    tasks/hello.js                                runlet/tasks:local
#
# Each task is bundled by esbuild into one CommonJS file (its npm packages included), as
# scripts/build-images.sh does, so a task image is the node base plus one file.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- dependencies, then the daemon's TypeScript build ----------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
# As scripts/setup.sh: install exactly the locked tree (npm ci refuses this lockfile on
# npm 11, which lacks other platforms' optional entries it never wrote on Linux).
RUN npm install --no-save --no-audit --no-fund --loglevel=error

FROM deps AS build
COPY tsconfig.json ./
COPY src src
COPY bench bench
RUN npx tsc -p tsconfig.json

# --- one task, bundled (a change to a task rebuilds only the task images) -----------------
FROM deps AS task-bundle
ARG TASK
COPY tasks tasks
RUN test -n "$TASK" || { echo 'build with --build-arg TASK=<name> (a directory tasks/<name> with main.ts)' >&2; exit 1; } \
 && test -f "tasks/$TASK/main.ts" || { echo "tasks/$TASK/main.ts does not exist" >&2; exit 1; } \
 && node_modules/.bin/esbuild "tasks/$TASK/main.ts" --bundle --platform=node --target=node20 --format=cjs \
      --outfile=/out/main.cjs --log-level=warning --legal-comments=none

FROM ${NODE_IMAGE} AS task
ARG TASK
COPY --from=task-bundle /out/main.cjs /task/main.cjs
WORKDIR /task
# A task needs no root (as tasks/task.Dockerfile).
USER 65534:65534
LABEL runlet.image=task runlet.task-image=${TASK}
CMD ["node", "/task/main.cjs"]

# --- the small images of the example config's demo tasks ---------------------------------
FROM busybox:1.36 AS busybox
LABEL runlet.image=base
CMD ["sh"]

FROM ${NODE_IMAGE} AS hello
WORKDIR /app
COPY tasks/hello.js /app/hello.js
LABEL runlet.image=tasks
CMD ["node", "hello.js"]

# --- the daemon (last, so a plain `docker build .` builds it) ------------------------------
FROM build AS prune
RUN npm prune --omit=dev --no-audit --no-fund --loglevel=error

FROM ${NODE_IMAGE} AS runlet
WORKDIR /app
ENV NODE_ENV=production
COPY --from=prune /src/package.json ./
COPY --from=prune /src/node_modules node_modules
COPY --from=prune /src/dist dist
# The dashboard's static files and the Lua scripts are read from the source tree at run time.
COPY src/http/dashboard src/http/dashboard
COPY src/redis/lua src/redis/lua
COPY config config
# Runs as root only to open the Docker socket mounted from the host (see docker-compose.yml);
# the containers it starts run with every capability dropped, never with the socket.
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["start", "-c", "config/runlet.yaml"]
