/**
 * A second PostgreSQL cluster of this machine's binaries, made for one test file: ssl = on with a
 * certificate for `localhost` from a CA made here, TLS-only password logins (pg_hba hostssl,
 * scram-sha-256), wal_level = logical, and a role that owns one database. Admin statements go
 * through its Unix socket (trust), so the test's own setup never depends on the code under test.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { appendFileSync, chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { makeTestCertificates } from "./testCertificates.ts"

export interface TlsPostgres {
  readonly port: number
  /** PEM of the CA that signed the server's certificate. */
  readonly caFile: string
  /** PEM of a CA that signed nothing of this server's. */
  readonly otherCaFile: string
  readonly user: string
  readonly password: string
  readonly database: string
  /** postgres://user:password@host:port/db, TLS parameters as given. */
  readonly url: (host: string, parameters: Record<string, string>) => string
  /** A superuser client over the Unix socket. */
  readonly admin: () => pg.Client
  /** The directory of its Unix socket (PGHOST for psql). */
  readonly socketDir: string
  readonly stop: () => void
}

export interface TlsPostgresOptions {
  /**
   * A deployment's own settings instead of the ones written here (deploy/secured/postgresql.conf,
   * its paths already pointed at this machine): included from postgresql.conf, with only this
   * machine's port, address, socket directory and test speed-ups set after it. Its certificate, key
   * and pg_hba file are used with the owners and modes they have; `caFile` is the CA that signed
   * its certificate. No pg_hba.conf is written.
   */
  readonly settings?: { readonly file: string; readonly caFile: string }
}

const binDir = (): string => {
  const versions = readdirSync("/usr/lib/postgresql").filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(a) - Number(b))
  const version = versions[versions.length - 1]
  if (version === undefined) throw new Error("no PostgreSQL binaries under /usr/lib/postgresql")
  return `/usr/lib/postgresql/${version}/bin`
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port")))
    })
  })

export const startTlsPostgres = async (options: TlsPostgresOptions = {}): Promise<TlsPostgres> => {
  const asRoot = process.getuid?.() === 0
  const base = mkdtempSync(join(tmpdir(), "fop-tlspg-"))
  // The server runs as the postgres user (it refuses root): it must reach its directory.
  if (asRoot) {
    for (let dir = tmpdir(); dir !== "/"; dir = join(dir, "..")) {
      if ((statSync(dir).mode & 0o001) === 0) chmodSync(dir, statSync(dir).mode | 0o001)
    }
    chmodSync(base, 0o755)
  }
  const certs = join(base, "certs")
  const data = join(base, "data")
  mkdirSync(certs)
  const made = makeTestCertificates(certs, ["localhost"])
  chmodSync(made.serverKey, 0o600)
  for (const file of [made.ca, made.otherCa, made.serverCert]) chmodSync(file, 0o644)
  const bin = binDir()
  const run = (command: string, args: ReadonlyArray<string>) => {
    const result = asRoot
      ? spawnSync("runuser", ["-u", "postgres", "--", join(bin, command), ...args], { encoding: "utf8" })
      : spawnSync(join(bin, command), [...args], { encoding: "utf8" })
    if (result.status !== 0) throw new Error(`${command} ${args.join(" ")}: exit ${result.status}: ${result.stderr}${result.stdout}`)
  }
  if (asRoot) {
    for (const path of [base, certs, ...readdirSync(certs).map((f) => join(certs, f))]) chownSync(path, uidOf("postgres"), gidOf("postgres"))
  }
  run("initdb", ["-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=reject", "-E", "UTF8", "--locale=C"])
  const port = await freePort()
  const machine = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${base}'`,
    "shared_buffers = 32MB",
    "fsync = off",
    ""
  ]
  if (options.settings === undefined) {
    writeFileSync(join(data, "pg_hba.conf"), [
      "local all all trust",
      // Passwords over TLS only; a plaintext attempt meets "no pg_hba.conf entry ... no encryption".
      "hostssl all all 127.0.0.1/32 scram-sha-256",
      "hostssl all all ::1/128 scram-sha-256",
      ""
    ].join("\n"))
    writeFileSync(join(data, "postgresql.auto.conf"), [
      "ssl = on",
      `ssl_cert_file = '${made.serverCert}'`,
      `ssl_key_file = '${made.serverKey}'`,
      "wal_level = logical",
      "max_replication_slots = 10",
      "max_wal_senders = 10",
      ...machine
    ].join("\n"))
  } else {
    // postgresql.auto.conf is read after postgresql.conf and what it includes: this machine's lines win.
    appendFileSync(join(data, "postgresql.conf"), `\ninclude '${options.settings.file}'\n`)
    writeFileSync(join(data, "postgresql.auto.conf"), machine.join("\n"))
  }
  if (asRoot) for (const file of ["pg_hba.conf", "postgresql.auto.conf"]) chownSync(join(data, file), uidOf("postgres"), gidOf("postgres"))
  run("pg_ctl", ["-D", data, "-l", join(base, "server.log"), "-w", "-t", "60", "start"])

  const user = "tls_app"
  const password = "s3cret-tls-pw"
  const database = "tls_orders"
  const admin = () => new pg.Client({ host: base, port, user: "postgres", database: "postgres" })
  const client = admin()
  await client.connect()
  try {
    await client.query(`CREATE ROLE ${user} LOGIN REPLICATION PASSWORD '${password}'`)
    await client.query(`CREATE DATABASE ${database} OWNER ${user}`)
    // Poll capture reads other sessions' xact_start (its horizon), as the stack's role may.
    await client.query(`GRANT pg_read_all_stats TO ${user}`)
  } finally {
    await client.end()
  }
  return {
    port,
    caFile: options.settings?.caFile ?? made.ca,
    otherCaFile: made.otherCa,
    user,
    password,
    database,
    url: (host, parameters) => {
      const query = new URLSearchParams(parameters).toString()
      return `postgres://${user}:${encodeURIComponent(password)}@${host}:${port}/${database}${query === "" ? "" : `?${query}`}`
    },
    admin: () => new pg.Client({ host: base, port, user: "postgres", database }),
    socketDir: base,
    stop: () => {
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"])
      } finally {
        rmSync(base, { recursive: true, force: true })
      }
    }
  }
}

const idOf = (flag: "-u" | "-g", name: string) => Number(execFileSync("id", [flag, name], { encoding: "utf8" }).trim())
const uidOf = (name: string) => idOf("-u", name)
const gidOf = (name: string) => idOf("-g", name)
