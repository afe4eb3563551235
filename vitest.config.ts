import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // globalSetup's teardown stops the broker (SIGTERM, SIGKILL after 30 s).
    teardownTimeout: 60_000,
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          environment: "node"
        }
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          environment: "node",
          // Finds or starts PostgreSQL + Kafka once per run and provides `endpoints` (test/support/endpoints.ts).
          globalSetup: ["test/support/globalSetup.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // One file at a time in one process (fileParallelism cannot be set per project):
          // 2 cores and one broker; the files share the database and broker.
          pool: "forks",
          poolOptions: { forks: { singleFork: true } },
          // After the unit project, so a failing unit test shows up before the slow part.
          sequence: { groupOrder: 1 }
        }
      }
    ]
  }
})
