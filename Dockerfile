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
# The build compiles the product only (src, workflows, activities; the demo and simulators live in dev/); what dist
# requires must be in "dependencies", as the pruned-image check (scripts/check-pruned-image.ts, run by .ci/run) checks.
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
# File sources (csv/jsonl paths in a run's input) must lie under /data: a run cannot make the worker read elsewhere.
ENV BACKFILL_SOURCE_DIRS=/data
RUN mkdir -p /var/lib/webhook-backfill /data && chown -R node:node /var/lib/webhook-backfill
USER node
# The same command as `npm start` (bench/ measures exactly that one; a unit test keeps the two equal). The
# live JavaScript heap stays under ~60 MB (BENCHMARKS.md): the caps keep V8 from letting garbage pile up to
# its default limit (GBs on a large host), and MALLOC_ARENA_MAX=2 keeps glibc from giving each of the
# worker's ~16 threads its own malloc arena. Together they keep peak RSS low and flat from 20k to 1M members.
# --no-allocation-site-pretenuring: in a process that has loaded the Temporal SDK, V8 took the short-lived rows of
# a large source for long-lived ones and allocated them in the old generation, doubling GC time (BENCHMARKS.md:
# preparing 1M rows 4.6 -> 3.3 s, nothing lost at 20k).
# --liftoff-only: undici's HTTP parser is WebAssembly; V8 recompiled it with TurboFan once hot, and glibc kept
# that compile's ~35 MB in the malloc heap in about half the starts (RSS at ready 180-188 MB instead of
# 153-160 MB, and every peak after it higher by as much; BENCHMARKS.md). The baseline code parses as fast here.
# MALLOC_MMAP_THRESHOLD_=131072 fixes glibc's mmap threshold at its initial 128 KiB: left dynamic, it rises to the
# largest block freed (MiBs), after which the duplicate index's 4 MiB tables and other large buffers land in the
# malloc heap, where the blocks that outlive them pin the memory: at ten million members the heap stayed ~25 MB
# larger after the source was read (BENCHMARKS.md).
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072
CMD ["node", "--max-old-space-size=128", "--max-semi-space-size=8", "--no-allocation-site-pretenuring", "--liftoff-only", "--expose-gc", "dist/src/worker.js"]
