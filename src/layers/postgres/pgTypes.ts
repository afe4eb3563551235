import { Either } from "effect"
import type { ColumnType, ScalarType } from "../../domain/columns.ts"

/**
 * A PostgreSQL type to the lake's column type (the mapping in src/domain/columns.ts), decided from
 * the catalog's pg_type rows. Built-in types are recognised by OID: the OIDs below are fixed when
 * the catalog is created (src/include/catalog/pg_type.dat), unlike names, which a user type in
 * another schema may also take.
 */

/** The pg_type columns the mapping reads. */
export interface PgTypeRow {
  readonly oid: number
  readonly typname: string
  /** 'b' base, 'e' enum, 'd' domain, 'c' composite, 'r' range, 'm' multirange, 'p' pseudo. */
  readonly typtype: string
  /** 'A' for array types. */
  readonly typcategory: string
  /** An array type's element type (0 for none). */
  readonly typelem: number
  /** A domain's base type (0 for none). */
  readonly typbasetype: number
  /** A domain's typmod on its base type (`CREATE DOMAIN d AS numeric(10,2)`), -1 for none. */
  readonly typtypmod: number
}

const scalarByOid: ReadonlyMap<number, ScalarType> = new Map<number, ScalarType>([
  [21, { kind: "short" }], // int2
  [23, { kind: "integer" }], // int4
  [20, { kind: "long" }], // int8
  [700, { kind: "float" }], // float4
  [701, { kind: "double" }], // float8
  [16, { kind: "boolean" }], // bool
  [25, { kind: "string" }], // text
  [1043, { kind: "string" }], // varchar
  [1042, { kind: "string" }], // bpchar (char(n))
  [19, { kind: "string" }], // name
  [2950, { kind: "string" }], // uuid
  [114, { kind: "string" }], // json
  [3802, { kind: "string" }], // jsonb
  [1083, { kind: "string" }], // time
  [1266, { kind: "string" }], // timetz
  [1082, { kind: "date" }], // date
  [1114, { kind: "timestamp" }], // timestamp
  [1184, { kind: "timestamp" }], // timestamptz
  [17, { kind: "binary" }] // bytea
])

/** int2vector and oidvector are in the array category but print `1 2 3`, not an array literal. */
const vectorOids: ReadonlySet<number> = new Set([22, 30])

export const numericOid = 1700
export const numericArrayOid = 1231

/** What a person reads in the error for an unsupported column. */
export const supportedTypes =
  "smallint, integer, bigint, numeric, real, double precision, boolean, text, varchar, char, name, uuid, json, jsonb, " +
  "enums, time, timetz, date, timestamp, timestamptz, bytea, domains over these, and one-dimensional arrays of them"

/** Delta's decimal holds at most 38 digits. */
const maxDecimalPrecision = 38

/**
 * numeric's typmod: ((precision << 16) | scale) + 4, the scale an 11-bit signed field (PostgreSQL 15
 * allows numeric(5,-2) and numeric(2,5)). -1: no precision given.
 */
export const numericTypmod = (typmod: number): { readonly precision: number; readonly scale: number } | undefined => {
  if (typmod < 4) return undefined
  const packed = typmod - 4
  return { precision: (packed >> 16) & 0xffff, scale: (((packed & 0x7ff) ^ 1024) - 1024) }
}

/**
 * numeric(p,s) with 0 <= s <= p <= 38 is a decimal; any other numeric (no typmod, more than 38
 * digits, a negative scale or one above the precision, which Delta's decimal cannot say) is a
 * string holding PostgreSQL's exact text.
 */
const numericType = (typmod: number): ScalarType => {
  const spec = numericTypmod(typmod)
  if (spec === undefined || spec.precision > maxDecimalPrecision || spec.scale < 0 || spec.scale > spec.precision) return { kind: "string" }
  return { kind: "decimal", precision: spec.precision, scale: spec.scale }
}

/** Domains nest (a domain over a domain); more than this is a cycle in a broken catalog. */
const maxDomainDepth = 32

/**
 * The lake type of type `oid` with modifier `typmod` (atttypmod: -1 when none), or Left with the
 * reason it has none. `typeOf` gives the pg_type row of an OID (the type, its domain bases, its
 * element type); undefined makes it unsupported.
 */
export const columnTypeOf = (
  typeOf: (oid: number) => PgTypeRow | undefined,
  oid: number,
  typmod: number
): Either.Either<ColumnType, string> => {
  const scalar = (start: number, startTypmod: number): Either.Either<ScalarType, string> => {
    let current = start
    let mod = startTypmod
    for (let depth = 0; depth < maxDomainDepth; depth++) {
      if (current === numericOid) return Either.right(numericType(mod))
      const known = scalarByOid.get(current)
      if (known !== undefined) return Either.right(known)
      const row = typeOf(current)
      if (row === undefined) return Either.left(`type oid ${current} is not in the catalog`)
      if (row.typtype === "e") return Either.right({ kind: "string" })
      if (row.typtype !== "d") return Either.left(`type ${row.typname} is not supported`)
      // A column of a domain type has atttypmod -1; the domain's own typmod applies to its base.
      if (mod < 0) mod = row.typtypmod
      current = row.typbasetype
    }
    return Either.left(`type oid ${start}: domains nested too deep`)
  }
  // An array, possibly behind domains: its element is a scalar (PostgreSQL has no array of arrays;
  // integer[][] is integer[] holding two-dimensional values).
  let current = oid
  let mod = typmod
  for (let depth = 0; depth < maxDomainDepth; depth++) {
    if (current === numericOid || scalarByOid.has(current)) break
    const row = typeOf(current)
    if (row === undefined) break
    if (row.typcategory === "A" && row.typelem !== 0 && !vectorOids.has(current)) {
      return Either.map(scalar(row.typelem, mod), (element): ColumnType => ({ kind: "array", element }))
    }
    if (row.typtype !== "d") break
    if (mod < 0) mod = row.typtypmod
    current = row.typbasetype
  }
  return scalar(oid, typmod)
}
