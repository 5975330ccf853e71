# svidkit images: one build, three targets that share everything but the entry point.
#
#   docker build --target svidkit-ca    -t svidkit-ca:0.1.0 .
#   docker build --target svidkit-agent -t svidkit-agent:0.1.0 .
#   docker build --target svidkit       -t svidkit:0.1.0 .
#
# Without --target the last stage, svidkit-ca, is built. Both stages start from the same image, so the
# better-sqlite3 addon compiled (or downloaded prebuilt) in the build stage matches the runtime's Node
# and glibc. Pin the base by digest (node:20-slim@sha256:...) in your own builds if you need them
# reproducible.

FROM node:20-slim AS build
# better-sqlite3 is a native addon: npm ci uses a prebuilt binary when one matches and otherwise
# compiles it, which needs these.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The repository's root manifest is the library; the daemons' dependencies come from their workspace.
COPY package.json package-lock.json ./
COPY packages/svidkit-daemons/package.json ./packages/svidkit-daemons/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY protos ./protos
COPY lib ./lib
COPY cmd ./cmd
COPY tools ./tools
# The image holds what the svidkit-daemons package holds (tools/stage-daemons.ts), and its manifest.
RUN npx tsc -p . \
  && node dist/tools/stage-daemons.js packages/svidkit-daemons \
  && npm prune --omit=dev --no-audit --no-fund \
  && rm node_modules/svidkit-daemons

FROM node:20-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the user the daemons run as: the code cannot be changed at run time.
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages/svidkit-daemons/package.json ./package.json
COPY --from=build /src/packages/svidkit-daemons/protos ./protos
COPY --from=build /src/packages/svidkit-daemons/dist ./dist
# Numeric, so that Kubernetes' runAsNonRoot can check it; no passwd entry is needed.
USER 10001:10001

# The CLI (svidkit id|svid|jwt|upstream ...).
FROM runtime AS svidkit
ENTRYPOINT ["node", "/app/dist/cmd/svidkit.js"]
CMD ["--help"]

# The node agent.
FROM runtime AS svidkit-agent
EXPOSE 8091
ENTRYPOINT ["node", "/app/dist/cmd/svidkit-agent.js"]
CMD ["run", "--config", "/etc/svidkit-agent/config/agent.yaml"]

# The CA daemon.
FROM runtime AS svidkit-ca
EXPOSE 8081 8082
ENTRYPOINT ["node", "/app/dist/cmd/svidkit-ca.js"]
CMD ["--config", "/etc/svidkit-ca/config/ca.yaml"]
