/**
 * The timestamp fast paths (canonical ISO text, the partition date) run for every order; they must
 * agree with the general Date-based functions everywhere, and give way to them outside their range.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  formatIsoMicros,
  formatIsoMicrosGeneral,
  type Micros,
  parseIsoMicros,
  parseIsoMicrosGeneral,
  utcDate,
  utcDateGeneral
} from "../../src/domain/Timestamp.ts"

const random = (() => {
  let state = 7
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648
    return state / 2147483648
  }
})()
const randomInt = (below: number) => Math.floor(random() * below)

const DAY = 86_400_000_000n
/** Instants from 1500 to 2600, denser near now and at day, second and leap-year edges. */
const randomMicros = (): Micros => {
  const pick = random()
  const base = pick < 0.5
    ? 1_700_000_000_000_000n + BigInt(randomInt(400_000_000)) * 1_000_000n
    : BigInt(Math.floor((random() * 1100 - 470) * 365.25)) * DAY
  const edge = [0n, -1n, 1n, 999_999n, 1_000_000n, DAY - 1n, BigInt(randomInt(1_000_000)), BigInt(randomInt(86_400)) * 1_000_000n][randomInt(8)]!
  return (base + edge) as Micros
}

describe("timestamp fast paths", () => {
  it("format exactly like the general formatter", () => {
    for (let i = 0; i < 50_000; i++) {
      const micros = randomMicros()
      expect(formatIsoMicros(micros), String(micros)).toBe(formatIsoMicrosGeneral(micros))
      expect(utcDate(micros), String(micros)).toBe(utcDateGeneral(micros))
    }
    for (const m of [0n, -1n, 951_782_400_000_000n /* 2000-02-29 */, 4_107_542_399_999_999n /* 2100-02-28 */, 253_402_300_799_999_999n]) {
      expect(formatIsoMicros(m as Micros)).toBe(formatIsoMicrosGeneral(m))
      expect(utcDate(m as Micros)).toBe(utcDateGeneral(m as Micros))
    }
  }, 30_000)

  it("parse exactly like the general parser, valid or not", () => {
    const variants = (text: string): Array<string> => {
      const [date, rest] = text.split("T") as [string, string]
      const time = rest.slice(0, 8)
      const fraction = rest.length > 9 ? rest.slice(9, -1) : ""
      const nine = (fraction + "123456789").slice(0, 1 + randomInt(9))
      return [
        text,
        `${date}T${time}Z`,
        `${date}T${time}.${nine}Z`,
        `${date} ${time}Z`,
        `${date}T${time}+05:30`,
        `${date}T${time}.Z`,
        text.replace("Z", "z"),
        text.slice(0, 5) + "13" + text.slice(7),
        text.slice(0, 8) + "31" + text.slice(10),
        text.slice(0, 8) + "30" + text.slice(10),
        text.slice(0, 8) + "29" + text.slice(10),
        text.slice(0, 11) + "24" + text.slice(13),
        text.slice(0, 14) + "60" + text.slice(16),
        text.slice(0, 17) + "6a" + text.slice(19),
        text.slice(0, 2) + "x" + text.slice(3),
        "0025" + text.slice(4)
      ]
    }
    let compared = 0
    for (let i = 0; i < 20_000; i++) {
      for (const text of variants(formatIsoMicrosGeneral(randomMicros()))) {
        expect(parseIsoMicros(text), text).toBe(parseIsoMicrosGeneral(text))
        compared += 1
      }
    }
    for (const text of ["", "Z", "2025-01-15T12:24:00", "2025-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "9999-12-31T23:59:59.999999999Z"]) {
      expect(parseIsoMicros(text), text).toBe(parseIsoMicrosGeneral(text))
    }
    expect(compared).toBe(320_000)
  }, 30_000)
})
