# The backfill worker. Build: docker build -t webhook-backfill .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY examples ./examples
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/examples ./examples
COPY package.json ./
# Members files are mounted at /data; the audit log and work files go to /var/lib/webhook-backfill.
ENV BACKFILL_DATA_DIR=/var/lib/webhook-backfill
RUN mkdir -p /var/lib/webhook-backfill /data && chown -R node:node /var/lib/webhook-backfill
USER node
# The heap cap keeps V8 from letting garbage pile up to its default limit (GBs on a large host): the
# live heap stays under ~60 MB (BENCHMARKS.md), and peak RSS stays low and flat.
CMD ["node", "--max-old-space-size=128", "dist/src/worker.js"]
