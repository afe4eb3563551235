/**
 * docker-compose.yml read as compose reads it (merge keys, `${VAR:-default}`), for what no engine on
 * this machine can check: the secured profile is well-formed, stays out of the default stack, and
 * agrees with the files in deploy/secured it runs (test/integration/composeSecured.test.ts runs those).
 */
import { existsSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parse } from "yaml"
import { repoRoot } from "../../scripts/stack/paths.ts"
import { envName, overridableKeys } from "../../src/config/loadConfig.ts"

interface Service {
  readonly profiles?: ReadonlyArray<string>
  readonly command?: ReadonlyArray<string>
  readonly environment?: Record<string, string | number>
  readonly volumes?: ReadonlyArray<string>
  readonly ports?: ReadonlyArray<string>
  readonly networks?: ReadonlyArray<string> | Record<string, unknown>
  readonly depends_on?: Record<string, unknown>
  readonly secrets?: ReadonlyArray<string | { readonly source: string }>
  readonly group_add?: ReadonlyArray<string>
  readonly healthcheck?: { readonly test?: ReadonlyArray<string> }
}

const compose = parse(readFileSync(join(repoRoot, "docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, Service>
  volumes?: Record<string, unknown>
  networks?: Record<string, unknown>
  secrets?: Record<string, unknown>
}
const deployFile = (name: string) => readFileSync(join(repoRoot, "deploy", "secured", name), "utf8")

/** `${NAME:-default}` with NAME unset. */
const interpolated = (value: string | number): string => String(value).replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, "$1")

const services = Object.entries(compose.services)
const secured = services.filter(([, service]) => service.profiles?.includes("secured"))
const defaults = ["postgres", "kafka", "minio", "minio-init", "producer", "consumer"]
const programs = ["producer-secured", "consumer-secured"] as const

const hostPorts = (service: Service) => (service.ports ?? []).map((p) => interpolated(p).split(":")[0]!)

/** make-certs.sh's default group per reader directory of /certs (`KAFKA_GID=${KAFKA_GID:-2101}`). */
const readerGids = (): Record<string, string> => {
  const script = deployFile("make-certs.sh")
  const gids: Record<string, string> = {}
  for (const [, name, gid] of script.matchAll(/^([A-Z]+)_GID=\$\{\1_GID:-(\d+)\}$/gm)) gids[name!.toLowerCase()] = gid!
  return gids
}

const properties = (text: string): Record<string, string> =>
  Object.fromEntries(text.split("\n").filter((l) => /^[a-z]/.test(l)).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]))

describe("docker-compose.yml", () => {
  it("keeps the default stack free of profiles; the secured services are all in profile `secured` and need nothing outside it", () => {
    for (const name of defaults) expect(compose.services[name]?.profiles, name).toBeUndefined()
    expect(secured.map(([name]) => name).sort()).toEqual(["certs-secured", "consumer-secured", "kafka-secured", "postgres-secured", "producer-secured"])
    for (const [name, service] of secured) {
      expect(service.profiles, name).toEqual(["secured"])
      // `up producer-secured consumer-secured` starts dependencies too: none may be a plaintext service.
      for (const dependency of Object.keys(service.depends_on ?? {})) {
        expect(compose.services[dependency]?.profiles, `${name} -> ${dependency}`).toEqual(["secured"])
      }
    }
    const defaultPorts = services.filter(([, s]) => s.profiles === undefined).flatMap(([, s]) => hostPorts(s))
    for (const [name, service] of secured) {
      for (const port of hostPorts(service)) expect(defaultPorts, `${name} publishes ${port}`).not.toContain(port)
    }
  })

  it("mounts only files that exist, and declares every volume, network, dependency and secret it uses", () => {
    for (const [name, service] of services) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(":")[0]!
        if (source.startsWith(".")) expect(existsSync(join(repoRoot, source)), `${name}: ${source}`).toBe(true)
        else expect(Object.keys(compose.volumes ?? {}), `${name}: ${source}`).toContain(source)
      }
      const networks = Array.isArray(service.networks) ? service.networks : Object.keys(service.networks ?? {})
      for (const network of networks) expect(Object.keys(compose.networks ?? {}), `${name}: ${network}`).toContain(network)
      for (const dependency of Object.keys(service.depends_on ?? {})) expect(compose.services[dependency], `${name} -> ${dependency}`).toBeDefined()
      for (const secret of service.secrets ?? []) {
        expect(Object.keys(compose.secrets ?? {}), name).toContain(typeof secret === "string" ? secret : secret.source)
      }
    }
  })

  it("sets on the secured programs only variables the configuration knows, with TLS verified and passwords from files", () => {
    const known = new Set(["PG_URL", "TABLES", ...overridableKeys.map(([section, key]) => envName(section, key))].flatMap((n) => [n, `${n}_FILE`]))
    for (const name of programs) {
      const service = compose.services[name]!
      const environment = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolated(v)]))
      for (const variable of Object.keys(environment)) {
        // HEALTH_PORT is the healthcheck's, not the program's.
        if (variable === "HEALTH_PORT") expect(JSON.stringify(service.healthcheck?.test)).toContain("HEALTH_PORT")
        else expect(known.has(variable), `${name}: ${variable}`).toBe(true)
      }
      expect(environment["KAFKA_SECURITY_PROTOCOL"], name).toBe("SASL_SSL")
      expect(environment["KAFKA_SASL_MECHANISM"], name).toBe("SCRAM-SHA-512")
      expect(environment["KAFKA_SSL_CA_LOCATION"], name).toBe("/certs/ca.crt")
      expect(environment["KAFKA_SASL_PASSWORD"], name).toBeUndefined()
      expect(environment["KAFKA_SASL_PASSWORD_FILE"], name).toMatch(/^\/certs\//)
      expect(environment["POSTGRES_PASSWORD"], name).toBeUndefined()
    }
    const producer = compose.services["producer-secured"]!.environment!
    expect(producer["POSTGRES_SSLMODE"]).toBe("verify-full")
    expect(producer["POSTGRES_SSLROOTCERT"]).toBe("/certs/ca.crt")
    expect(producer["POSTGRES_PASSWORD_FILE"]).toMatch(/^\/certs\//)
    // The consumer has no PostgreSQL login.
    expect(Object.keys(compose.services["consumer-secured"]!.environment!).filter((v) => v.startsWith("POSTGRES_"))).toEqual([])
  })

  it("gives each secured service the group of the /certs directory it reads (make-certs.sh), and no other", () => {
    const gids = readerGids()
    expect(Object.keys(gids).sort()).toEqual(["consumer", "kafka", "postgres", "producer"])
    // The postgres image's postgres group (docker-library/postgres: groupadd --gid=999).
    expect(gids["postgres"]).toBe("999")
    const readers: Record<string, string> = { "kafka-secured": "kafka", "producer-secured": "producer", "consumer-secured": "consumer" }
    for (const [name, reader] of Object.entries(readers)) {
      expect(compose.services[name]!.group_add, name).toEqual([gids[reader]])
      for (const value of Object.values(compose.services[name]!.environment ?? {})) {
        const directory = /^\/certs\/([^/]+)\//.exec(String(value))?.[1]
        if (directory !== undefined) expect(directory, `${name}: ${value}`).toBe(reader)
      }
    }
    const postgres = compose.services["postgres-secured"]!
    expect(postgres.group_add).toBeUndefined()
    expect(String(postgres.environment!["POSTGRES_PASSWORD_FILE"])).toMatch(/^\/certs\/postgres\//)
  })
})

describe("deploy/secured", () => {
  it("PostgreSQL: TLS on with the certificate from /certs, the pg_hba file from /deploy, TLS-only SCRAM logins", () => {
    const conf = deployFile("postgresql.conf")
    expect(conf).toMatch(/^ssl = on$/m)
    expect(conf).toMatch(/^ssl_key_file = '\/certs\/postgres\/server\.key'$/m)
    expect(conf).toMatch(/^hba_file = '\/deploy\/pg_hba\.conf'$/m)
    expect(conf).toMatch(/^wal_level = logical$/m)
    const service = compose.services["postgres-secured"]!
    expect(service.volumes).toContain("./deploy/secured:/deploy:ro")
    expect(service.command).toEqual(["postgres", "-c", "config_file=/deploy/postgresql.conf"])
    // The image runs an executable init script; one without the bit it sources into its own bash,
    // where the script's `set -eu` would outlive it.
    expect(service.volumes).toContain("./deploy/secured/postgres-init.sh:/docker-entrypoint-initdb.d/secured-init.sh:ro")
    expect(statSync(join(repoRoot, "deploy", "secured", "postgres-init.sh")).mode & 0o111).toBe(0o111)
    const rules = deployFile("pg_hba.conf").split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#")).map((l) => l.trim().split(/\s+/))
    for (const rule of rules) {
      if (rule[0] === "local") continue
      expect(rule[0], rule.join(" ")).toBe("hostssl")
      expect(rule[rule.length - 1], rule.join(" ")).toBe("scram-sha-256")
    }
  })

  it("Kafka: only loopback listeners go without TLS and a login; the host's listener is advertised on the published port", () => {
    const props = properties(deployFile("kafka.properties"))
    const protocols = Object.fromEntries(props["listener.security.protocol.map"]!.split(",").map((p) => p.split(":") as [string, string]))
    for (const listener of props["listeners"]!.split(",")) {
      const [, name, host] = /^([A-Z_]+):\/\/([^:]*):\d+$/.exec(listener)!
      if (host !== "127.0.0.1") expect(protocols[name!], listener).toBe("SASL_SSL")
    }
    expect(props["sasl.enabled.mechanisms"]).toBe("SCRAM-SHA-512")
    expect(props["allow.everyone.if.no.acl.found"]).toBe("false")
    const external = /EXTERNAL:\/\/localhost:(\d+)/.exec(props["advertised.listeners"]!)![1]
    expect(compose.services["kafka-secured"]!.ports).toEqual([`${external}:${external}`])
    const inter = /BROKER:\/\/(127\.0\.0\.1:\d+)/.exec(props["advertised.listeners"]!)![1]
    expect(JSON.stringify(compose.services["kafka-secured"]!.healthcheck?.test)).toContain(`--bootstrap-server ${inter}`)
    expect(props["log.dirs"]).toBe("/var/lib/kafka/data")
    expect(compose.services["kafka-secured"]!.volumes).toContain("kafka_secured_data:/var/lib/kafka/data")
  })

  it("kafka-start.sh makes the users the programs log in as, with ACLs on the topic and group they use by default", () => {
    const script = deployFile("kafka-start.sh")
    const defaultOf = (variable: string) => new RegExp(`\\$\\{${variable}:-([^}]+)\\}`).exec(script)?.[1]
    expect(defaultOf("KAFKA_PRODUCER_USER")).toBe(compose.services["producer-secured"]!.environment!["KAFKA_SASL_USERNAME"])
    expect(defaultOf("KAFKA_CONSUMER_USER")).toBe(compose.services["consumer-secured"]!.environment!["KAFKA_SASL_USERNAME"])
    const config = parse(readFileSync(join(repoRoot, "configs", "orders_stream.yml"), "utf8")) as { kafka: { topic: string } }
    expect(defaultOf("KAFKA_TOPIC")).toBe(config.kafka.topic)
  })
})
