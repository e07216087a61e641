# syntax=docker/dockerfile:1
#
# Gatehouse in a container: production mode, listening on 0.0.0.0:8787, state (SQLite, keys, the secret
# key) in the /data volume, running as the unprivileged `node` user.
#
#   docker build -t gatehouse .
#   docker run --rm -p 8787:8787 -v gatehouse-data:/data \
#     -e GATEHOUSE_SERVER__PUBLIC_URL=http://localhost:8787 gatehouse
#
# Behind a TLS proxy, GATEHOUSE_SERVER__PUBLIC_URL is the https URL clients use. Mount a config file and
# pass `serve --config /etc/gatehouse/gatehouse.jsonc` as the command to configure the rest.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 is native: fetched prebuilt when one matches, compiled with these otherwise.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# No scripts yet (`prepare` would build before the sources are here); then the native module alone.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    GATEHOUSE_DATA_DIR=/data \
    GATEHOUSE_SERVER__HOST=0.0.0.0 \
    GATEHOUSE_SERVER__PORT=8787
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json README.md LICENSE ./
COPY bin ./bin
# Owned by the runtime user and closed to others: production mode refuses a data directory others can write.
RUN mkdir -p /data && chown node:node /data && chmod 0700 /data
USER node
VOLUME ["/data"]
EXPOSE 8787
# /healthz with node itself (the slim image has no curl), on the port the server was given.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.GATEHOUSE_SERVER__PORT||8787)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node itself is PID 1, so `docker stop` (SIGTERM) reaches it and it drains. Docker kills after
# 10 s by default, the same as server.shutdownTimeoutMs: give it more (`docker stop --time 15`, Compose
# `stop_grace_period: 15s`) or lower the timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/gatehouse.js"]
CMD ["serve"]
