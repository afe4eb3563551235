/**
 * The exact JSON parser: numbers stay their source text (JSON.parse would round int8 and numeric),
 * everything else as JSON.parse reads it, invalid text rejected with its position.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { type ExactJson, exactJsonText, parseExactJson } from "../../src/domain/exactJson.ts"

const parse = (text: string): ExactJson => {
  const result = parseExactJson(text)
  if (Either.isLeft(result)) throw new Error(result.left)
  return result.right
}

const failure = (text: string): string => {
  const result = parseExactJson(text)
  if (Either.isRight(result)) throw new Error(`parsed: ${text}`)
  return result.left
}

/** The parsed value as JSON.parse would give it, numbers as their text. */
const plain = (json: ExactJson): unknown => {
  switch (json.type) {
    case "null":
      return null
    case "boolean":
    case "string":
      return json.value
    case "number":
      return { n: json.text }
    case "array":
      return json.items.map(plain)
    case "object":
      return json.members.map(([k, v]) => [k, plain(v)])
  }
}

describe("parseExactJson", () => {
  it("keeps number literals as their source text", () => {
    expect(plain(parse("9223372036854775807"))).toEqual({ n: "9223372036854775807" })
    expect(plain(parse("-9223372036854775808"))).toEqual({ n: "-9223372036854775808" })
    expect(plain(parse("12345678901234567890.120"))).toEqual({ n: "12345678901234567890.120" })
    expect(plain(parse("-0.000001000"))).toEqual({ n: "-0.000001000" })
    expect(plain(parse("1e+20"))).toEqual({ n: "1e+20" })
    expect(plain(parse("-0"))).toEqual({ n: "-0" })
    expect(plain(parse("1.5E-7"))).toEqual({ n: "1.5E-7" })
  })

  it("reads objects in order, arrays, literals and whitespace", () => {
    const text = ' { "b" : [1, 2.50, null, true, false, "x"], "a": {}, "c": [] } '
    expect(plain(parse(text))).toEqual([
      ["b", [{ n: "1" }, { n: "2.50" }, null, true, false, "x"]],
      ["a", []],
      ["c", []]
    ])
  })

  it("keeps duplicate members for the caller to judge", () => {
    expect(plain(parse('{"a":1,"a":2}'))).toEqual([["a", { n: "1" }], ["a", { n: "2" }]])
  })

  it("decodes strings exactly as JSON.parse does: escapes, unicode, emoji, surrogate pairs", () => {
    const samples = [
      "",
      "plain",
      "quote \" backslash \\ slash /",
      "tab\tnew\nline\rcr\bback\fform",
      "\u0001\u001f control",
      "é ü 中文 🍕 👩‍👩‍👧",
      "\ud83c\udf55 as escapes",
      "NULL",
      "{\"json\": [1,2]}"
    ]
    for (const sample of samples) {
      const text = JSON.stringify(sample)
      expect(parse(text)).toEqual({ type: "string", value: JSON.parse(text) })
    }
    expect(parse('"\\u00e9\\uD83C\\uDF55\\/"')).toEqual({ type: "string", value: "é🍕/" })
  })

  it("writes back what it read (numbers verbatim)", () => {
    const text = '{"id":9223372036854775807,"p":12.30,"s":"a\\"b","l":[1,null,-0],"o":{"x":false}}'
    expect(exactJsonText(parse(text))).toBe(text)
  })

  it("rejects invalid JSON with the position", () => {
    expect(failure("")).toMatch(/position 0/)
    expect(failure("{")).toMatch(/position 1/)
    expect(failure('{"a":1,}')).toMatch(/position 7/)
    expect(failure("[1,]")).toMatch(/position 3/)
    expect(failure("01")).toMatch(/position 1/)
    expect(failure("1.")).toMatch(/position 1/)
    expect(failure("-")).toMatch(/position 0/)
    expect(failure("+1")).toMatch(/position 0/)
    expect(failure(".5")).toMatch(/position 0/)
    expect(failure("NaN")).toMatch(/position 0/)
    expect(failure("tru")).toMatch(/position 0/)
    expect(failure('"abc')).toMatch(/unterminated/)
    expect(failure('"a\nb"')).toMatch(/control character/)
    expect(failure('"\\x"')).toMatch(/bad escape/)
    expect(failure('"\\u12"')).toMatch(/\\u escape/)
    expect(failure("{a:1}")).toMatch(/member name/)
    expect(failure('{"a" 1}')).toMatch(/expected :/)
    expect(failure("[1 2]")).toMatch(/position 3/)
    expect(failure("1 2")).toMatch(/position 2/)
    expect(failure("[".repeat(10_000))).toMatch(/nested too deep/)
  })

  it("agrees with JSON.parse on every value it accepts (numbers compared as doubles)", () => {
    const toPlain = (json: ExactJson): unknown =>
      json.type === "number" ? Number(json.text)
      : json.type === "array" ? json.items.map(toPlain)
      : json.type === "object" ? Object.fromEntries(json.members.map(([k, v]) => [k, toPlain(v)]))
      : json.type === "null" ? null
      : json.value
    const samples = ['{"a":[1,{"b":"c"}],"d":-1.5e3}', "[]", "{}", '"x"', "true", "null", "0", "[[[]]]", '{"":""}']
    for (const sample of samples) expect(toPlain(parse(sample))).toEqual(JSON.parse(sample))
  })
})
