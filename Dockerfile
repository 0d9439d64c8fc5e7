# syntax=docker/dockerfile:1
# One image for the Flywheel server, workers and serving; the service picks its entry point with the command:
#   server (default) · worker · worker-main · worker-train · serving · prepare
# Written and linted (tests/unit/compose.test.ts), not built here: this machine has no container engine.

# ---- build: every dependency (Vite for the web UI), then the UI's static files
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN node --import tsx scripts/ui.ts --force

# ---- runtime dependencies only (no dev tools, no embedded Postgres or GPU TensorFlow)
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force

# ---- final image
FROM node:20-slim
ENV NODE_ENV=production \
    FLYWHEEL_LOG_FORMAT=json \
    FLYWHEEL_STATE_DIR=/var/lib/flywheel \
    FLYWHEEL_SERVER_HOST=0.0.0.0 \
    FLYWHEEL_SERVING_HOST=0.0.0.0 \
    FLYWHEEL_WORKER_METRICS_HOST=0.0.0.0 \
    FLYWHEEL_WORKER_METRICS_PORT=9464
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY activities ./activities
COPY bin ./bin
COPY cli ./cli
COPY config ./config
COPY examples ./examples
COPY features ./features
COPY inference ./inference
COPY ml ./ml
COPY observability ./observability
COPY schema ./schema
COPY scripts ./scripts
COPY server ./server
COPY serving ./serving
COPY storage ./storage
COPY store ./store
COPY training ./training
COPY web ./web
COPY --from=build /app/web/dist ./web/dist
COPY workers ./workers
COPY workflows ./workflows
COPY docker/entrypoint.sh /usr/local/bin/flywheel-entrypoint
RUN mkdir -p /var/lib/flywheel && chown node:node /var/lib/flywheel && chmod 755 /usr/local/bin/flywheel-entrypoint
# node:20-slim's unprivileged user (uid 1000).
USER node
EXPOSE 8470 8480 9464
ENTRYPOINT ["flywheel-entrypoint"]
CMD ["server"]
