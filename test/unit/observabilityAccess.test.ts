import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, Redacted } from "effect"
import { healthLayer } from "../../src/observability/Health.ts"
import { defaultBindAddress, observabilityServer, serverAccessOf } from "../../src/observability/httpServer.ts"

/** Serves on a free port, bound and authenticated as given; the port comes from the "serving" log line. */
const serving = (access: Parameters<typeof observabilityServer>[3]) =>
  Effect.gen(function*() {
    const lines: Array<Record<string, unknown>> = []
    const logger = Logger.make(({ annotations, message }) => {
      lines.push({ message, ...Object.fromEntries(annotations) })
    })
    const layer = observabilityServer("producer", 0, "observability.producer_port", access).pipe(
      Layer.provide(healthLayer(["broker"])),
      Layer.provide(Logger.replace(Logger.defaultLogger, logger))
    )
    yield* Layer.build(layer)
    const line = lines.find((l) => Array.isArray(l["message"]) ? l["message"][0] === "serving /metrics and /health" : l["message"] === "serving /metrics and /health")
    return line as { port: number; address: string; auth: string }
  })

describe("the /metrics and /health server", () => {
  it.scoped("asks for basic auth on /metrics and /health, leaves /health/live open, and binds where told", () =>
    Effect.gen(function*() {
      const access = serverAccessOf({ bind_address: "127.0.0.1", basic_auth_user: "prom", basic_auth_password: Redacted.make("scrape-pw") })
      const { port, address, auth } = yield* serving(access)
      expect(address).toBe("127.0.0.1")
      expect(auth).toBe("basic")
      const get = (path: string, credentials?: string) =>
        Effect.promise(() => fetch(`http://127.0.0.1:${port}${path}`, credentials === undefined ? {} : { headers: { authorization: `Basic ${Buffer.from(credentials).toString("base64")}` } }))
      expect((yield* get("/metrics")).status).toBe(401)
      expect((yield* get("/health", "prom:wrong")).status).toBe(401)
      expect((yield* get("/metrics", "prom:scrape-pw")).status).toBe(200)
      expect((yield* get("/health/live")).status).toBe(200)
    }))

  it("defaults to loopback on a machine and to every interface in a container", () => {
    const none = () => false
    expect(defaultBindAddress({}, none)).toBe("127.0.0.1")
    expect(defaultBindAddress({ KUBERNETES_SERVICE_HOST: "10.0.0.1" }, none)).toBe("0.0.0.0")
    expect(defaultBindAddress({}, (path) => path === "/.dockerenv")).toBe("0.0.0.0")
    expect(defaultBindAddress({}, (path) => path === "/run/.containerenv")).toBe("0.0.0.0")
  })
})
