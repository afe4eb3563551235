import { Effect, Layer } from "effect"
import * as Http from "node:http"
import { Health } from "./Health.ts"
import { prometheusText } from "./prometheus.ts"

/**
 * `/metrics` (Prometheus text) and `/health` (JSON; 200 when ready, 503 when not; `/health/live`
 * is 200 while the process runs). Port 0 picks a free one; the port in use is logged.
 */
export const observabilityServer = (program: string, port: number, portKey: string) =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const health = yield* Health
    const runtime = yield* Effect.runtime<never>()
    const run = <A>(effect: Effect.Effect<A>) => Effect.runPromise(Effect.provide(effect, runtime.context))
    const server = Http.createServer((request, response) => {
      const path = (request.url ?? "/").split("?")[0]
      if (path === "/metrics") {
        run(prometheusText).then((text) => {
          response.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" })
          response.end(text)
        }, () => response.writeHead(500).end())
      } else if (path === "/health" || path === "/health/ready") {
        run(health.snapshot).then((snapshot) => {
          response.writeHead(snapshot.ready ? 200 : 503, { "content-type": "application/json" })
          response.end(JSON.stringify({ program, status: snapshot.ready ? "ready" : "not ready", live: true, ...snapshot }))
        }, () => response.writeHead(500).end())
      } else if (path === "/health/live") {
        response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ program, live: true }))
      } else {
        response.writeHead(404, { "content-type": "text/plain" }).end("try /metrics or /health\n")
      }
    })
    const bound = yield* Effect.acquireRelease(
      Effect.async<number, Error>((resume) => {
        server.once("error", (error) =>
          resume(Effect.fail(
            new Error(`cannot serve /metrics and /health on port ${port} (${portKey}): ${error.message}; ` +
              `set ${portKey.toUpperCase().replace(".", "_")} to another port, 0 for any free port or -1 for none`)
          )))
        server.listen(port, "0.0.0.0", () => resume(Effect.succeed((server.address() as import("node:net").AddressInfo).port)))
      }),
      () => Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
    )
    yield* Effect.logInfo("serving /metrics and /health").pipe(Effect.annotateLogs({ port: bound }))
  }))
