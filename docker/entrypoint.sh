#!/bin/sh
# Picks the Flywheel process an image runs: server | worker | worker-main | worker-train [--gpu] | serving | prepare,
# or any other command as given (a shell, `node bin/flywheel.js …`).
set -e
service="${1:-server}"
[ "$#" -gt 0 ] && shift
case "$service" in
  server) exec node --import tsx server/main.ts "$@" ;;
  worker) exec node --import tsx workers/all.ts "$@" ;;
  worker-main) exec node --import tsx workers/main.ts "$@" ;;
  worker-train) exec node --import tsx workers/train.ts "$@" ;;
  serving) exec node --import tsx serving/main.ts "$@" ;;
  prepare) exec node --import tsx scripts/prepare.ts "$@" ;;
  *) exec "$service" "$@" ;;
esac
