import { Effect, Layer, Redacted } from "effect"
import { timingSafeEqual } from "node:crypto"
import { existsSync } from "node:fs"
import * as Http from "node:http"
import { Health } from "./Health.ts"
import { prometheusText } from "./prometheus.ts"

export interface ServerAccess {
  /** The address to listen on; undefined: `defaultBindAddress()`. */
  readonly bindAddress?: string | undefined
  readonly basicAuth?: { readonly user: string; readonly password: Redacted.Redacted<string> } | undefined
}

/** The observability keys as the server takes them. */
export const serverAccessOf = (keys: {
  readonly bind_address?: string | undefined
  readonly basic_auth_user?: string | undefined
  readonly basic_auth_password?: Redacted.Redacted<string> | undefined
}): ServerAccess => ({
  bindAddress: keys.bind_address,
  basicAuth: keys.basic_auth_user !== undefined && keys.basic_auth_password !== undefined
    ? { user: keys.basic_auth_user, password: keys.basic_auth_password }
    : undefined
})

/**
 * Loopback on a machine (metrics are nobody else's business by default); every interface inside a
 * container, where loopback is unreachable from the scraper and the container's network is the fence.
 */
export const defaultBindAddress = (env: NodeJS.ProcessEnv = process.env, exists: (path: string) => boolean = existsSync): string =>
  exists("/.dockerenv") || exists("/run/.containerenv") || env["KUBERNETES_SERVICE_HOST"] !== undefined ? "0.0.0.0" : "127.0.0.1"

const authorized = (request: Http.IncomingMessage, auth: NonNullable<ServerAccess["basicAuth"]>): boolean => {
  const header = request.headers.authorization ?? ""
  if (!header.startsWith("Basic ")) return false
  const given = Buffer.from(header.slice("Basic ".length), "base64")
  const expected = Buffer.from(`${auth.user}:${Redacted.value(auth.password)}`)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/**
 * `/metrics` (Prometheus text) and `/health` (JSON; 200 when ready, 503 when not; `/health/live`
 * is 200 while the process runs). Port 0 picks a free one; the port in use is logged.
 */
export const observabilityServer = (program: string, port: number, portKey: string, access: ServerAccess = {}) =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const health = yield* Health
    const runtime = yield* Effect.runtime<never>()
    const run = <A>(effect: Effect.Effect<A>) => Effect.runPromise(Effect.provide(effect, runtime.context))
    const host = access.bindAddress ?? defaultBindAddress()
    const server = Http.createServer((request, response) => {
      const path = (request.url ?? "/").split("?")[0]
      if (access.basicAuth !== undefined && path !== "/health/live" && !authorized(request, access.basicAuth)) {
        response.writeHead(401, { "www-authenticate": `Basic realm="food-orders ${program}"`, "content-type": "text/plain" }).end("unauthorized\n")
        return
      }
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
            new Error(`cannot serve /metrics and /health on ${host} port ${port} (${portKey}): ${error.message}; ` +
              `set ${portKey.toUpperCase().replace(".", "_")} to another port, 0 for any free port or -1 for none`)
          )))
        server.listen(port, host, () => resume(Effect.succeed((server.address() as import("node:net").AddressInfo).port)))
      }),
      () => Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
    )
    yield* Effect.logInfo("serving /metrics and /health").pipe(Effect.annotateLogs({
      port: bound,
      address: host,
      auth: access.basicAuth === undefined ? "none" : "basic"
    }))
  }))
