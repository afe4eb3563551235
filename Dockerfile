# syntax=docker/dockerfile:1
# The producer and consumer image. One image, the program picked by the command:
#   docker compose up            (producer + consumer, see docker-compose.yml)
#   docker run food-orders-pipeline dist/bin/consumer.mjs --help

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Exactly the lock's versions (it lists every platform's optional binaries; npm picks this image's).
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM deps AS build
# The programs run as esbuild bundles (scripts/build.mjs): under half of tsx's memory, under a second to start.
COPY tsconfig.json ./
COPY scripts/build.mjs ./scripts/
COPY src ./src
RUN node scripts/build.mjs

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    LOG_FORMAT=json \
    DATALAKE_PATH=/datalake/food/2025em1100506/output/orders \
    STREAMING_CHECKPOINT_LOCATION=/datalake/food/2025em1100506/checkpoints/orders \
    STREAMING_LAST_PROCESSED_TIMESTAMP_LOCATION=/datalake/food/2025em1100506/lastprocess/orders
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY configs ./configs
COPY --from=build /app/dist ./dist
# The lake lives on a volume at /datalake (as in the reference design); the image's copy of the
# directory gives a fresh named volume the right owner.
RUN mkdir -p /datalake && chown node:node /datalake
VOLUME ["/datalake"]
USER node
EXPOSE 9464 9465
ENTRYPOINT ["node"]
CMD ["--max-old-space-size=192", "dist/bin/producer.mjs"]
