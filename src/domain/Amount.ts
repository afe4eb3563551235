import { Either, ParseResult, Schema } from "effect"

/**
 * Money is an integer number of cents. NUMERIC(10,2) tops out at 99,999,999.99, i.e. 10^10 - 1 cents,
 * well inside a double's exact integers, so cents never drift; only the JSON boundary sees a decimal.
 */
export const Cents = Schema.Int.pipe(Schema.brand("Cents"))
export type Cents = typeof Cents.Type

export const maxCents = 9_999_999_999

const outOfRange = (cents: number) => Math.abs(cents) > maxCents

/** Why a JSON number is not an amount, or undefined when it is one. */
const amountProblem = (value: number, cents: number): string | undefined =>
  !Number.isFinite(value)
    ? "Expected a finite amount"
    : Math.abs(value * 100 - cents) > 1e-6
    ? `Expected an amount with at most 2 decimals, got ${value}`
    : outOfRange(cents)
    ? `Expected an amount within DECIMAL(10,2), got ${value}`
    : undefined

/** The cents of a JSON number, or undefined when it is not a DECIMAL(10,2) amount (the hot path's check). */
export const centsFromNumber = (value: number): Cents | undefined => {
  const cents = Math.round(value * 100)
  return amountProblem(value, cents) === undefined ? (cents as Cents) : undefined
}

/** A JSON number with at most two decimals, within DECIMAL(10,2). */
export const AmountFromNumber = Schema.transformOrFail(Schema.Number, Cents, {
  strict: true,
  decode: (value, _, ast) => {
    const cents = Math.round(value * 100)
    const problem = amountProblem(value, cents)
    return problem === undefined ? Either.right(Cents.make(cents)) : Either.left(new ParseResult.Type(ast, value, problem))
  },
  // An integer divided by 100 is the double nearest the decimal, so it prints as "19.99".
  encode: (cents) => Either.right(cents / 100)
})

const numericPattern = /^(-?)(\d{1,8})(?:\.(\d{1,2}))?$/

/** The cents of a NUMERIC(10,2) string such as "220.00", or undefined when it is not one. */
export const centsFromNumeric = (text: string): Cents | undefined => {
  const m = numericPattern.exec(text)
  if (m === null) return undefined
  const cents = Number(m[2]) * 100 + Number((m[3] ?? "").padEnd(2, "0"))
  return (m[1] === "-" ? -cents : cents) as Cents
}

/** NUMERIC(10,2) as the driver returns it: a decimal string such as "220.00". */
export const AmountFromNumeric = Schema.transformOrFail(Schema.String, Cents, {
  strict: true,
  decode: (text, _, ast) => {
    const cents = centsFromNumeric(text)
    return cents === undefined
      ? Either.left(new ParseResult.Type(ast, text, `Expected a NUMERIC(10,2) string, got ${JSON.stringify(text)}`))
      : Either.right(Cents.make(cents))
  },
  encode: (cents) => Either.right(formatCents(cents))
})

export const formatCents = (cents: number): string => {
  const sign = cents < 0 ? "-" : ""
  const abs = Math.abs(cents)
  return `${sign}${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, "0")}`
}
