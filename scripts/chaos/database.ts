import pg from "pg"
import { canSeeOtherTransactionsSql } from "../../src/layers/postgres/captureQuery.ts"
import { ensureLocalPostgres } from "../stack/postgres.ts"
import { ordersTableDdl } from "../stack/sql.ts"
import { TEST_DATABASE } from "../../test/support/endpointSources.ts"

/**
 * The PostgreSQL the run writes to: PG_URL when set (a stack someone runs), else the machine's
 * server through its superuser, with the test database and role the integration harness uses
 * (created idempotently), never food_delivery_db.
 */
export const resolvePgUrl = async (explicit?: string): Promise<{ pgUrl: string; source: string }> => {
  const fromEnv = explicit ?? process.env["PG_URL"]
  if (fromEnv !== undefined && fromEnv !== "") return { pgUrl: fromEnv, source: explicit === undefined ? "PG_URL" : "option" }
  const local = await ensureLocalPostgres({ database: TEST_DATABASE })
  return { pgUrl: local.pgUrl, source: `local superuser (database ${local.database} as ${local.role})` }
}

export const redactUrl = (url: string): string => url.replace(/:[^:@/]*@/, ":***@")

/**
 * A pool for the generator and the comparison. The producer's capture horizon needs its role to see
 * other sessions' transactions; checked here so a misconfigured role fails the run at once instead
 * of leaving the producer waiting for PostgreSQL.
 */
export const openPool = async (pgUrl: string, max: number): Promise<pg.Pool> => {
  const pool = new pg.Pool({ connectionString: pgUrl, max, application_name: "food-orders-chaos" })
  pool.on("error", () => undefined) // an idle client dropped by the server; the next query reconnects
  try {
    const { rows: [check] } = await pool.query<{ ok: boolean }>(canSeeOtherTransactionsSql)
    if (check?.ok !== true) {
      throw new Error("the database role cannot see other sessions' transactions (the producer needs pg_read_all_stats)")
    }
    return pool
  } catch (error) {
    await pool.end()
    throw error
  }
}

export const createOrdersTable = async (pool: pg.Pool, table: string): Promise<void> => {
  await pool.query(ordersTableDdl(table))
}

export const dropOrdersTable = async (pool: pg.Pool, table: string): Promise<void> => {
  await pool.query(`DROP TABLE IF EXISTS "${table}"`)
}

export const committedCount = async (pool: pg.Pool, table: string): Promise<number> => {
  const { rows: [row] } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}"`)
  return row?.n ?? 0
}
