/**
 * The secured compose profile (docker-compose.yml, `--profile secured`) run from its own files on a
 * machine without Docker. deploy/secured/make-certs.sh makes the CA, certificates and passwords with
 * this machine's openssl; PostgreSQL runs with the profile's postgresql.conf and pg_hba.conf and is
 * initialised by its postgres-init.sh; Kafka is started by its kafka-start.sh from its
 * kafka.properties, with bin/ shims over the suite's Kafka jars in place of the image's /opt/kafka;
 * the producer and consumer run with the environment of the profile's services, read from the
 * compose file. What a container provides is substituted, and only that: /certs and /deploy become
 * this test's directories, the containers' names (postgres, kafka) localhost, their ports free ones.
 * Not exercised here: Docker itself (images, volumes, group_add, the entrypoints of the images).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process"
import { createHash } from "node:crypto"
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Kafka, logLevel } from "kafkajs"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parse } from "yaml"
import { isBrokerProcess, logTail, stopBroker } from "../../scripts/stack/kafkaBroker.ts"
import { ensureKafkaJars, KAFKA_VERSION } from "../../scripts/stack/kafkaJars.ts"
import { cacheRoot, repoRoot } from "../../scripts/stack/paths.ts"
import { findFreePorts } from "../../scripts/stack/ports.ts"
import { run, sleep } from "../../scripts/stack/proc.ts"
import { javaCommand, mavenCommand } from "../../scripts/stack/tools.ts"
import { envName, overridableKeys } from "../../src/config/loadConfig.ts"
import { summariseLake } from "../support/lakeSummary.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { logLines, type ProgramRun, runProgram } from "../support/pipelineProcess.ts"
import { startTlsPostgres, type TlsPostgres } from "../support/tlsPostgres.ts"

const deploy = join(repoRoot, "deploy", "secured")
const table = "2025em1100506_orders"
const rawTopic = "2025em1100506_food_orders_raw"
const orders = 300

interface ComposeService {
  readonly environment?: Record<string, string | number>
  readonly group_add?: ReadonlyArray<string>
}
const compose = parse(readFileSync(join(repoRoot, "docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, ComposeService>
}

/** `${NAME:-default}` as compose resolves it with NAME unset: this machine's shell must not decide. */
const interpolated = (value: string | number): string =>
  String(value).replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, "$1").replace(/\$\$/g, "$")

const environmentOf = (service: string): Record<string, string> =>
  Object.fromEntries(Object.entries(compose.services[service]?.environment ?? {}).map(([k, v]) => [k, interpolated(v)]))

/**
 * kafka-acls.sh runs org.apache.kafka.tools.AclCommand, which is in kafka-tools: not among the
 * broker's jars (scripts/stack/kafkaJars.ts), so it is fetched once beside them.
 */
const ensureKafkaToolsJar = async (): Promise<string> => {
  const dir = join(cacheRoot(), `kafka-tools-${KAFKA_VERSION}`)
  const jar = join(dir, `kafka-tools-${KAFKA_VERSION}.jar`)
  if (existsSync(jar)) return jar
  const partial = `${dir}.partial-${process.pid}`
  const result = await run(mavenCommand(), [
    "-B", "-q", "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy",
    `-Dartifact=org.apache.kafka:kafka-tools:${KAFKA_VERSION}`, `-DoutputDirectory=${partial}`
  ], { cwd: tmpdir(), timeoutMs: 180_000 })
  if (result.code !== 0 || !existsSync(join(partial, `kafka-tools-${KAFKA_VERSION}.jar`))) {
    rmSync(partial, { recursive: true, force: true })
    throw new Error(`mvn could not fetch kafka-tools ${KAFKA_VERSION} (exit ${result.code}):\n${result.stdout}${result.stderr}`)
  }
  if (existsSync(jar)) rmSync(partial, { recursive: true, force: true })
  else renameSync(partial, dir)
  return jar
}

const log4j = (level: string) => `status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${level}
rootLogger.appenderRef.stdout.ref = STDOUT
`

/** The image's /opt/kafka/bin scripts this profile calls, as one-line launchers of the same classes. */
const writeKafkaHome = (home: string, libDir: string, toolsJar: string): void => {
  mkdirSync(join(home, "bin"), { recursive: true })
  writeFileSync(join(home, "broker-log4j2.properties"), log4j("INFO"))
  writeFileSync(join(home, "tools-log4j2.properties"), log4j("WARN"))
  const classPath = `${libDir}/*:${toolsJar}`
  const tool = "-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true"
  const launchers: ReadonlyArray<readonly [string, string, string, string]> = [
    ["kafka-storage.sh", "kafka.tools.StorageTool", tool, "tools"],
    ["kafka-acls.sh", "org.apache.kafka.tools.AclCommand", tool, "tools"],
    ["kafka-server-start.sh", "kafka.Kafka", "-Xms256m -Xmx512m -Djava.awt.headless=true", "broker"]
  ]
  for (const [script, mainClass, flags, logging] of launchers) {
    const file = join(home, "bin", script)
    writeFileSync(file, `#!/bin/sh\nexec "${javaCommand()}" ${flags} -cp "${classPath}" -Dlog4j2.configurationFile=${join(home, `${logging}-log4j2.properties`)} ${mainClass} "$@"\n`)
    chmodSync(file, 0o755)
  }
}

/**
 * deploy/secured/kafka.properties for this machine: /certs/ → the test's certificates, the log
 * directory → a temporary one, each of the four container ports → a free one, the containers' name
 * for the broker (kafka) → localhost (which the certificate names too). Nothing else changes.
 */
const kafkaPropertiesHere = (certs: string, data: string, ports: Readonly<Record<string, number>>): string => {
  const text = readFileSync(join(deploy, "kafka.properties"), "utf8")
  for (const port of Object.keys(ports)) expect(text).toContain(`:${port}`)
  expect(text).toMatch(/^log\.dirs=/m)
  return text
    .replaceAll("/certs/", `${certs}/`)
    .replace(/^log\.dirs=.*$/m, `log.dirs=${data}`)
    .replace(/:(\d+)\b/g, (whole, port: string) => ports[port] === undefined ? whole : `:${ports[port]}`)
    .replaceAll("//kafka:", "//localhost:")
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex")

describe("compose profile `secured`, run from deploy/secured on this machine", () => {
  const asRoot = process.getuid?.() === 0
  // In the container the postgres directory's group is the image's postgres group (999); here, this machine's.
  const postgresGid = asRoot ? execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim() : undefined
  let base: string
  let certs: string
  let postgres: TlsPostgres
  let broker: ChildProcess | undefined
  let brokerLog: string
  let ports: { readonly internal: number; readonly external: number; readonly controller: number; readonly inter: number }
  let programEnv: (service: "producer-secured" | "consumer-secured") => Record<string, string>
  let certsOutput: string

  /** The start script's process group: the broker it became, and its ACL job if that is still trying. */
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      if (broker?.pid !== undefined) process.kill(-broker.pid, signal)
    } catch {
      // already gone
    }
  }
  const onExit = () => {
    if (broker?.pid !== undefined && isBrokerProcess(broker.pid)) process.kill(broker.pid, "SIGKILL")
    killGroup("SIGKILL")
  }

  beforeAll(async () => {
    const [libDir, toolsJar] = await Promise.all([ensureKafkaJars(), ensureKafkaToolsJar()])
    base = mkdtempSync(join(tmpdir(), "fop-compose-secured-"))
    // PostgreSQL runs as the postgres user when we are root: it must reach the certificates.
    chmodSync(base, 0o755)
    certs = join(base, "certs")
    const makeCerts = () =>
      execFileSync("sh", [join(deploy, "make-certs.sh"), certs], {
        encoding: "utf8",
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...(postgresGid === undefined ? {} : { POSTGRES_GID: postgresGid }) }
      })
    certsOutput = makeCerts()
    const before = ["ca.crt", "postgres/server.key", "kafka/producer_password"].map((f) => sha256(join(certs, f)))
    const again = makeCerts()
    expect(again).toContain("nothing to do")
    expect(["ca.crt", "postgres/server.key", "kafka/producer_password"].map((f) => sha256(join(certs, f)))).toEqual(before)

    // PostgreSQL: the profile's settings file with /certs/ and /deploy/ pointed here.
    const settings = join(base, "postgresql.conf")
    const profileSettings = readFileSync(join(deploy, "postgresql.conf"), "utf8")
    expect(profileSettings).toContain("'/certs/postgres/server.key'")
    expect(profileSettings).toContain("'/deploy/pg_hba.conf'")
    writeFileSync(settings, profileSettings.replaceAll("'/certs/", `'${certs}/`).replaceAll("'/deploy/", `'${deploy}/`), { mode: 0o644 })
    postgres = await startTlsPostgres({ settings: { file: settings, caFile: join(certs, "ca.crt") } })
    // What the postgres image's entrypoint does before its init scripts: the superuser and database
    // of the service's environment, then each script in /docker-entrypoint-initdb.d.
    const pgEnv = environmentOf("postgres-secured")
    const superuser = pgEnv["POSTGRES_USER"]!
    const database = pgEnv["POSTGRES_DB"]!
    const passwordFile = pgEnv["POSTGRES_PASSWORD_FILE"]!.replace(/^\/certs\//, `${certs}/`)
    const admin = postgres.admin()
    await admin.connect()
    try {
      await admin.query(`CREATE ROLE "${superuser}" SUPERUSER LOGIN PASSWORD '${readFileSync(passwordFile, "utf8").trim()}'`)
      await admin.query(`CREATE DATABASE "${database}" OWNER "${superuser}"`)
    } finally {
      await admin.end()
    }
    execFileSync("sh", [join(deploy, "postgres-init.sh")], {
      encoding: "utf8",
      env: {
        PATH: process.env["PATH"] ?? "/usr/bin:/bin",
        PGHOST: postgres.socketDir,
        PGPORT: String(postgres.port),
        POSTGRES_USER: superuser,
        POSTGRES_DB: database,
        ORDERS_SQL_DIR: join(repoRoot, "db"),
        SECURED_CERTS: certs
      }
    })

    // Kafka: the profile's start script and properties, its /opt/kafka replaced by shims.
    const [internal, external, controller, inter] = await findFreePorts(4)
    ports = { internal: internal!, external: external!, controller: controller!, inter: inter! }
    const kafkaDir = join(base, "kafka")
    mkdirSync(join(kafkaDir, "data"), { recursive: true })
    writeKafkaHome(join(kafkaDir, "home"), libDir, toolsJar)
    writeFileSync(join(kafkaDir, "kafka.properties"), kafkaPropertiesHere(certs, join(kafkaDir, "data"), {
      "29092": ports.internal, "9192": ports.external, "9093": ports.controller, "29093": ports.inter
    }))
    brokerLog = join(kafkaDir, "broker.log")
    const out = openSync(brokerLog, "a")
    try {
      broker = spawn("sh", [join(deploy, "kafka-start.sh")], {
        cwd: kafkaDir,
        detached: true,
        stdio: ["ignore", out, out],
        env: {
          PATH: process.env["PATH"] ?? "/usr/bin:/bin",
          HOME: process.env["HOME"] ?? base,
          ...environmentOf("kafka-secured"),
          KAFKA_HOME: join(kafkaDir, "home"),
          KAFKA_SECURED_CONFIG: join(kafkaDir, "kafka.properties"),
          SECURED_CERTS: certs
        }
      })
    } finally {
      closeSync(out)
    }
    process.once("exit", onExit)
    // The marker is written once the ACLs exist, which needs a running broker.
    const deadline = Date.now() + 90_000
    while (!existsSync(join(kafkaDir, "data", "secured-acls.done"))) {
      if (broker.exitCode !== null || Date.now() > deadline) {
        throw new Error(`kafka-start.sh did not get the broker up with its ACLs:\n${logTail(brokerLog)}`)
      }
      await sleep(300)
    }

    // The programs' environment: the service's, for this machine; every other configuration
    // variable blanked, so nothing from the shell running the tests takes part.
    const state = join(base, "state")
    const blank = Object.fromEntries(
      ["PG_URL", "TABLES", ...overridableKeys.map(([section, key]) => envName(section, key))].flatMap((name) => [[name, ""], [`${name}_FILE`, ""]])
    )
    programEnv = (service) => {
      const here: Record<string, string> = {}
      for (const [name, value] of Object.entries(environmentOf(service))) {
        here[name] = name === "POSTGRES_HOST"
          ? value.replace(/^postgres$/, "localhost")
          : name === "POSTGRES_PORT"
          ? value.replace(/^5432$/, String(postgres.port))
          : value.replace(/^\/certs\//, `${certs}/`).replace("postgres:5432", `localhost:${postgres.port}`).replace("kafka:29092", `localhost:${ports.internal}`)
      }
      return {
        ...blank,
        ...here,
        // In the container these come from the image (Dockerfile ENV) and the lake volume.
        DATALAKE_PATH: join(state, "output/orders"),
        STREAMING_CHECKPOINT_LOCATION: join(state, "checkpoints/orders"),
        STREAMING_LAST_PROCESSED_TIMESTAMP_LOCATION: join(state, "lastprocess/orders"),
        // Any free port, on the loopback: tests run beside other programs.
        OBSERVABILITY_PRODUCER_PORT: "0",
        OBSERVABILITY_CONSUMER_PORT: "0",
        OBSERVABILITY_BIND_ADDRESS: "127.0.0.1"
      }
    }
  }, 240_000)

  afterAll(async () => {
    process.removeListener("exit", onExit)
    if (broker?.pid !== undefined) await stopBroker(broker.pid, { timeoutMs: 20_000 })
    killGroup("SIGKILL")
    postgres?.stop()
    if (base !== undefined) rmSync(base, { recursive: true, force: true })
  })

  const secret = (file: string) => readFileSync(join(certs, file), "utf8").trim()
  const output = (result: ProgramRun) => result.stdout + result.stderr
  const annotation = (result: ProgramRun, message: string) =>
    logLines(result).find((l) => l["message"] === message)?.["annotations"] as Record<string, unknown> | undefined

  it("make-certs.sh gives each reader its own directory, readable by the group compose gives that service only", () => {
    expect(certsOutput).toContain("made the CA")
    const keystore = readFileSync(join(certs, "kafka/server.keystore.pem"), "utf8")
    // Kafka's PEM keystore takes a PKCS#8 key, then the certificate.
    expect(keystore.startsWith("-----BEGIN PRIVATE KEY-----")).toBe(true)
    writeFileSync(join(base, "kafka.crt"), keystore.slice(keystore.indexOf("-----BEGIN CERTIFICATE-----")))
    const openssl = (...args: ReadonlyArray<string>) => execFileSync("openssl", args, { encoding: "utf8" })
    for (const [certificate, name] of [[join(certs, "postgres/server.crt"), "postgres"], [join(base, "kafka.crt"), "kafka"]] as const) {
      expect(openssl("x509", "-in", certificate, "-noout", "-ext", "subjectAltName")).toContain(`DNS:${name}, DNS:localhost`)
      expect(openssl("verify", "-CAfile", join(certs, "ca.crt"), certificate)).toContain(": OK")
    }
    const groups: Record<string, string | undefined> = {
      postgres: postgresGid,
      kafka: compose.services["kafka-secured"]?.group_add?.[0],
      producer: compose.services["producer-secured"]?.group_add?.[0],
      consumer: compose.services["consumer-secured"]?.group_add?.[0]
    }
    const secrets = ["postgres/server.key", "postgres/superuser_password", "postgres/capture_password", "kafka/server.keystore.pem",
      "kafka/producer_password", "kafka/consumer_password", "producer/postgres_password", "producer/kafka_password", "consumer/kafka_password"]
    for (const file of secrets) {
      const stat = statSync(join(certs, file))
      const reader = file.split("/")[0]!
      if (asRoot) {
        expect(stat.mode & 0o777, file).toBe(0o640)
        expect(stat.uid, file).toBe(0)
        expect(String(stat.gid), file).toBe(groups[reader])
        expect(String(statSync(join(certs, reader)).gid), reader).toBe(groups[reader])
      } else {
        expect(stat.mode & 0o777, file).toBe(0o600)
      }
      expect(statSync(join(certs, reader)).mode & 0o007, reader).toBe(0)
    }
    expect(statSync(join(certs, "ca.key")).mode & 0o077).toBe(0)
    // Both copies of a password are the same password; each account has its own.
    expect(secret("producer/kafka_password")).toBe(secret("kafka/producer_password"))
    expect(secret("consumer/kafka_password")).toBe(secret("kafka/consumer_password"))
    expect(secret("producer/postgres_password")).toBe(secret("postgres/capture_password"))
    expect(new Set(["producer/kafka_password", "consumer/kafka_password", "postgres/capture_password", "postgres/superuser_password"].map(secret)).size).toBe(4)
  })

  it("moves orders to the lake with the services' environment: verify-full TLS to PostgreSQL, SASL_SSL to Kafka, least-privilege users", async () => {
    const admin = new pg.Client({ host: postgres.socketDir, port: postgres.port, user: "postgres", database: "food_delivery_db" })
    await admin.connect()
    try {
      const [role] = (await admin.query(`SELECT rolsuper, rolreplication, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'orders_capture'`)).rows
      expect(role).toEqual({ rolsuper: false, rolreplication: true, rolcreatedb: false, rolcreaterole: false })
      const [{ owner }] = (await admin.query(`SELECT tableowner AS owner FROM pg_tables WHERE tablename = $1`, [table])).rows
      expect(owner).toBe("student")
      await admin.query(insertOrdersSql(table, 1001, orders, "2026-05-01T09:00:00Z", 40))
    } finally {
      await admin.end()
    }
    const samples = 10 // db/001_orders.sql's rows, loaded by postgres-init.sh

    const producer = programEnv("producer-secured")
    const produced = await runProgram("producer", ["--once"], producer)
    expect(produced.code, output(produced)).toBe(0)
    expect(annotation(produced, "PostgreSQL reached")?.["sslmode"]).toBe("verify-full (TLS)")
    expect(annotation(produced, "producer starting")?.["kafka_security"]).toBe("SASL_SSL SCRAM-SHA-512 as orders_producer")

    const consumed = await runProgram("consumer", ["--once"], programEnv("consumer-secured"))
    expect(consumed.code, output(consumed)).toBe(0)
    expect(annotation(consumed, "consumer starting")?.["kafka_security"]).toBe("SASL_SSL SCRAM-SHA-512 as orders_consumer")
    const lake = await summariseLake(producer["DATALAKE_PATH"]!)
    expect(lake.rows).toBe(samples + orders)
    expect(lake.distinctIds).toBe(samples + orders)
    for (const run of [produced, consumed]) {
      for (const password of ["producer/kafka_password", "producer/postgres_password", "consumer/kafka_password"]) {
        expect(output(run)).not.toContain(secret(password))
      }
    }
  }, 120_000)

  it("refuses a wrong password at PostgreSQL and at Kafka, and PostgreSQL without TLS", async () => {
    const wrong = join(base, "wrong_password")
    writeFileSync(wrong, "not-the-password-5150\n")
    const producer = programEnv("producer-secured")
    const kafkaRefused = await runProgram("producer", ["--once"], { ...producer, KAFKA_SASL_PASSWORD_FILE: wrong })
    expect(kafkaRefused.code).not.toBe(0)
    expect(output(kafkaRefused)).toContain("the broker refused the SASL login")
    const pgRefused = await runProgram("producer", ["--once"], { ...producer, POSTGRES_PASSWORD_FILE: wrong })
    expect(pgRefused.code).not.toBe(0)
    expect(output(pgRefused)).toContain("refused the password of user orders_capture")
    const plaintext = await runProgram("producer", ["--once"], { ...producer, POSTGRES_SSLMODE: "disable", POSTGRES_SSLROOTCERT: "" })
    expect(plaintext.code).not.toBe(0)
    expect(output(plaintext)).toContain("only over TLS: set postgres.sslmode")
    for (const run of [kafkaRefused, pgRefused, plaintext]) {
      expect(output(run)).not.toContain("not-the-password-5150")
      expect(run.ms).toBeLessThan(30_000)
    }
  }, 120_000)

  it("grants the consumer no write to the raw topic, on the host's listener (EXTERNAL) too", async () => {
    const kafka = new Kafka({
      clientId: "compose-secured-test",
      brokers: [`localhost:${ports.external}`],
      ssl: { ca: [readFileSync(join(certs, "ca.crt"), "utf8")] },
      sasl: { mechanism: "scram-sha-512", username: "orders_consumer", password: secret("consumer/kafka_password") },
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 }
    })
    const producer = kafka.producer({ retry: { retries: 0 } })
    await producer.connect()
    try {
      await expect(producer.send({ topic: rawTopic, messages: [{ key: "1", value: "forged" }] })).rejects.toThrow(/authoriz/i)
    } finally {
      await producer.disconnect()
    }
  }, 60_000)
})
