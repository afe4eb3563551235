/**
 * PostgreSQL over TLS, end to end: a second cluster of this machine (test/support/tlsPostgres.ts)
 * with ssl = on, a certificate for `localhost` from a CA made in the test, and password logins over
 * TLS only. The producer reaches it with `PG_URL=...?sslmode=verify-full&sslrootcert=<ca>` (the
 * query pool, the snapshot and the replication stream alike) and the consumer writes the lake. A
 * wrong CA, a host name the certificate does not name, plaintext, and a wrong password from
 * POSTGRES_PASSWORD_FILE each stop the producer at start with the key to fix, the password never
 * printed, and nothing published.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, expect, it } from "vitest"
import { describeIntegration } from "../support/endpoints.ts"
import { summariseLake } from "../support/lakeSummary.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { readAllRaw } from "../support/rawKafka.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"
import { startTlsPostgres, type TlsPostgres } from "../support/tlsPostgres.ts"

describeIntegration("PostgreSQL over TLS", (endpoints) => {
  let server: TlsPostgres
  let secrets: string
  const pipelines: Array<TestPipeline> = []

  beforeAll(async () => {
    server = await startTlsPostgres()
    secrets = mkdtempSync(join(tmpdir(), "fop-secrets-"))
  }, 120_000)

  afterAll(async () => {
    for (const pipeline of pipelines) await pipeline.close().catch(() => undefined)
    server?.stop()
    if (secrets !== undefined) rmSync(secrets, { recursive: true, force: true })
  })

  const verified = () => server.url("localhost", { sslmode: "verify-full", sslrootcert: server.caFile })

  /** A pipeline whose table lives on the TLS server; the test's own pool reaches it verified too. */
  const tlsPipeline = async (prefix: string, extra: Record<string, string>) => {
    const pipeline = await makeTestPipeline({ ...endpoints, pgUrl: verified() }, prefix, { extra })
    pipelines.push(pipeline)
    return pipeline
  }

  it.each(["logical", "poll"] as const)("captures over verify-full TLS (%s): every order reaches the lake", async (mode) => {
    const pipeline = await tlsPipeline(`tls${mode}`, { CAPTURE_MODE: mode })
    await pipeline.pool.query(insertOrdersSql(pipeline.table, 1, 300, "2026-03-01T10:00:00Z", 60))
    const [{ ssl }] = (await pipeline.pool.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows
    expect(ssl).toBe(true)

    const produced = pipeline.ok(await pipeline.run("producer"))
    expect(pipeline.annotation(produced, "PostgreSQL reached")?.["sslmode"]).toBe("verify-full (TLS)")
    pipeline.ok(await pipeline.run("consumer"))
    // The server takes passwords over TLS only (hostssl), so the pool, the snapshot and the
    // replication stream were all TLS, or there would be no rows.
    const lake = await summariseLake(pipeline.lake)
    expect(lake.rows).toBe(300)
    expect(lake.distinctIds).toBe(300)
  }, 180_000)

  it("refuses a server whose certificate another CA signed, or that names another host, at start and publishing nothing", async () => {
    const pipeline = await tlsPipeline("tlsbad", { CAPTURE_MODE: "logical" })
    await pipeline.pool.query(insertOrdersSql(pipeline.table, 1, 5, "2026-03-01T10:00:00Z", 60))

    const wrongCa = await pipeline.run("producer", { PG_URL: server.url("localhost", { sslmode: "verify-full", sslrootcert: server.otherCaFile }) })
    expect(wrongCa.code).not.toBe(0)
    expect(wrongCa.stdout + wrongCa.stderr).toContain("the TLS handshake failed (sslmode verify-full)")
    expect(wrongCa.stdout + wrongCa.stderr).toContain("postgres.sslrootcert")

    // The certificate names localhost only: verify-full to 127.0.0.1 fails, verify-ca (any name the CA signed) passes.
    const wrongHost = await pipeline.run("producer", { PG_URL: server.url("127.0.0.1", { sslmode: "verify-full", sslrootcert: server.caFile }) })
    expect(wrongHost.code).not.toBe(0)
    expect(wrongHost.stdout + wrongHost.stderr).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate/)
    expect(wrongHost.stdout + wrongHost.stderr).toContain("postgres.host is a name in the server's certificate")

    // Plaintext meets pg_hba's "no encryption", and the hint names sslmode.
    const plaintext = await pipeline.run("producer", { PG_URL: server.url("localhost", { sslmode: "disable" }) })
    expect(plaintext.code).not.toBe(0)
    expect(plaintext.stdout + plaintext.stderr).toContain("only over TLS: set postgres.sslmode")

    for (const run of [wrongCa, wrongHost, plaintext]) {
      expect(run.stdout + run.stderr).not.toContain(server.password)
      expect(run.ms).toBeLessThan(30_000)
    }
    expect(await readAllRaw(endpoints.kafkaBrokers, pipeline.topic, 3_000).catch(() => [])).toHaveLength(0)

    const caOnly = pipeline.ok(await pipeline.run("producer", { PG_URL: server.url("127.0.0.1", { sslmode: "verify-ca", sslrootcert: server.caFile }) }))
    expect(pipeline.annotation(caOnly, "PostgreSQL reached")?.["sslmode"]).toBe("verify-ca (TLS)")
    expect(await readAllRaw(endpoints.kafkaBrokers, pipeline.topic)).toHaveLength(5)
  }, 180_000)

  it("takes the password from POSTGRES_PASSWORD_FILE; a wrong one stops the producer at start, never printed", async () => {
    const pipeline = await tlsPipeline("tlspw", { CAPTURE_MODE: "logical" })
    await pipeline.pool.query(insertOrdersSql(pipeline.table, 1, 7, "2026-03-01T10:00:00Z", 60))
    const withoutPassword = server.url("localhost", { sslmode: "verify-full", sslrootcert: server.caFile }).replace(`:${encodeURIComponent(server.password)}@`, "@")
    const wrongFile = join(secrets, "wrong")
    writeFileSync(wrongFile, "not-the-password-4711\n")
    const wrong = await pipeline.run("producer", { PG_URL: withoutPassword, POSTGRES_PASSWORD_FILE: wrongFile })
    expect(wrong.code).not.toBe(0)
    expect(wrong.stdout + wrong.stderr).toContain(`refused the password of user ${server.user}`)
    expect(wrong.stdout + wrong.stderr).toContain("POSTGRES_PASSWORD_FILE")
    expect(wrong.stdout + wrong.stderr).not.toContain("not-the-password-4711")
    expect(await readAllRaw(endpoints.kafkaBrokers, pipeline.topic, 3_000).catch(() => [])).toHaveLength(0)

    const rightFile = join(secrets, "right")
    writeFileSync(rightFile, `${server.password}\n`)
    pipeline.ok(await pipeline.run("producer", { PG_URL: withoutPassword, POSTGRES_PASSWORD_FILE: rightFile }))
    expect(await readAllRaw(endpoints.kafkaBrokers, pipeline.topic)).toHaveLength(7)
  }, 180_000)

  it("captures with a role that has only LOGIN REPLICATION and SELECT on the table; without SELECT it names the grant", async () => {
    const pipeline = await tlsPipeline("tlsleast", { CAPTURE_MODE: "logical" })
    const { table } = pipeline
    // What the table's owner does once: the publication and the replica identity (both need ownership).
    await pipeline.pool.query(`ALTER TABLE "${table}" REPLICA IDENTITY FULL`)
    await pipeline.pool.query(`CREATE PUBLICATION "${table}_pub" FOR TABLE "${table}"`)
    await pipeline.pool.query(insertOrdersSql(table, 1, 20, "2026-03-01T10:00:00Z", 60))
    const role = `${pipeline.roll}_capture`
    const password = "capture-only-pw"
    const admin = server.admin()
    await admin.connect()
    try {
      await admin.query(`CREATE ROLE "${role}" LOGIN REPLICATION PASSWORD '${password}'`)
    } finally {
      await admin.end()
    }
    const asCapture = server.url("localhost", { sslmode: "verify-full", sslrootcert: server.caFile })
      .replace(`${server.user}:${encodeURIComponent(server.password)}@`, `${role}:${password}@`)

    const refused = await pipeline.run("producer", { PG_URL: asCapture })
    expect(refused.code).not.toBe(0)
    // The log is JSON: the quotes around the table name arrive escaped.
    expect((refused.stdout + refused.stderr).replaceAll('\\"', '"')).toContain(`GRANT SELECT ON "${table}" TO ${role}`)

    await pipeline.pool.query(`GRANT SELECT ON "${table}" TO "${role}"`)
    pipeline.ok(await pipeline.run("producer", { PG_URL: asCapture }))
    expect(await readAllRaw(endpoints.kafkaBrokers, pipeline.topic)).toHaveLength(20)
  }, 180_000)

  it("prefer and require take the TLS the server offers without judging its certificate, as libpq does", async () => {
    const pipeline = await tlsPipeline("tlsprefer", { CAPTURE_MODE: "logical" })
    await pipeline.pool.query(insertOrdersSql(pipeline.table, 1, 9, "2026-03-01T10:00:00Z", 60))
    for (const sslmode of ["prefer", "require"]) {
      // 127.0.0.1 is not a name in the certificate, and no CA is given: only verification would mind.
      const run = pipeline.ok(await pipeline.run("producer", { PG_URL: server.url("127.0.0.1", { sslmode }) }))
      expect(pipeline.annotation(run, "PostgreSQL reached")?.["sslmode"]).toBe(`${sslmode} (TLS)`)
    }
    expect(await readAllRaw(endpoints.kafkaBrokers, pipeline.topic)).toHaveLength(9)
  }, 180_000)
})
