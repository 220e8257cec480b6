# One image per example task (scripts/build-images.sh): the shared node base image plus the
# task bundled into a single file. Runs as nobody: a task needs no root.
FROM runlet/node:local
COPY main.cjs /task/main.cjs
WORKDIR /task
USER 65534:65534
CMD ["node", "/task/main.cjs"]
