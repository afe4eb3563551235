import { Either } from "effect"

/**
 * JSON parsed with each number kept as its source text: JSON.parse turns 9223372036854775807 and
 * 12345678901234567890.12 into the nearest double, and Node 20 has no source-text access in its
 * reviver. Objects keep their members in order, duplicates included (the caller decides).
 */
export type ExactJson =
  | { readonly type: "null" }
  | { readonly type: "boolean"; readonly value: boolean }
  | { readonly type: "number"; readonly text: string }
  | { readonly type: "string"; readonly value: string }
  | { readonly type: "array"; readonly items: ReadonlyArray<ExactJson> }
  | { readonly type: "object"; readonly members: ReadonlyArray<readonly [string, ExactJson]> }

/** Deeper nesting than any row needs; a guard against a stack overflow on hostile input. */
const maxDepth = 256

const numberPattern = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y

class JsonSyntax extends Error {}

/** Parses `text` as one JSON value (RFC 8259); Left: what is wrong and at which character. */
export const parseExactJson = (text: string): Either.Either<ExactJson, string> => {
  let i = 0
  const fail = (what: string): never => {
    throw new JsonSyntax(`invalid JSON at position ${i}: ${what}`)
  }
  const space = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i)
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++
      else break
    }
  }
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length
    else fail(`unexpected ${describeAt(text, i)}`)
  }
  const string = (): string => {
    i++ // the opening quote
    let out = ""
    let start = i
    while (true) {
      if (i >= text.length) fail("unterminated string")
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        out += text.slice(start, i)
        i++
        return out
      }
      if (c < 0x20) fail("control character in string")
      if (c !== 0x5c) {
        i++
        continue
      }
      out += text.slice(start, i)
      const e = text[i + 1]
      switch (e) {
        case "\"":
        case "\\":
        case "/":
          out += e
          break
        case "b":
          out += "\b"
          break
        case "f":
          out += "\f"
          break
        case "n":
          out += "\n"
          break
        case "r":
          out += "\r"
          break
        case "t":
          out += "\t"
          break
        case "u": {
          const hex = text.slice(i + 2, i + 6)
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape")
          out += String.fromCharCode(parseInt(hex, 16))
          i += 4
          break
        }
        default:
          fail("bad escape")
      }
      i += 2
      start = i
    }
  }
  const value = (depth: number): ExactJson => {
    if (depth > maxDepth) fail("nested too deep")
    space()
    const c = text[i]
    switch (c) {
      case "{": {
        i++
        const members: Array<readonly [string, ExactJson]> = []
        space()
        if (text[i] === "}") {
          i++
          return { type: "object", members }
        }
        while (true) {
          space()
          if (text[i] !== "\"") fail("expected a member name")
          const name = string()
          space()
          if (text[i] !== ":") fail("expected :")
          i++
          members.push([name, value(depth + 1)])
          space()
          if (text[i] === ",") i++
          else if (text[i] === "}") {
            i++
            return { type: "object", members }
          } else fail("expected , or }")
        }
      }
      case "[": {
        i++
        const items: Array<ExactJson> = []
        space()
        if (text[i] === "]") {
          i++
          return { type: "array", items }
        }
        while (true) {
          items.push(value(depth + 1))
          space()
          if (text[i] === ",") i++
          else if (text[i] === "]") {
            i++
            return { type: "array", items }
          } else fail("expected , or ]")
        }
      }
      case "\"":
        return { type: "string", value: string() }
      case "t":
        literal("true")
        return { type: "boolean", value: true }
      case "f":
        literal("false")
        return { type: "boolean", value: false }
      case "n":
        literal("null")
        return { type: "null" }
      default: {
        numberPattern.lastIndex = i
        const m = numberPattern.exec(text)
        if (m === null) return fail(c === undefined ? "unexpected end" : `unexpected ${describeAt(text, i)}`)
        i += m[0].length
        return { type: "number", text: m[0] }
      }
    }
  }
  try {
    const result = value(0)
    space()
    if (i !== text.length) fail(`unexpected ${describeAt(text, i)} after the value`)
    return Either.right(result)
  } catch (error) {
    if (error instanceof JsonSyntax) return Either.left(error.message)
    throw error
  }
}

const describeAt = (text: string, i: number) => (i >= text.length ? "end" : JSON.stringify(text.slice(i, i + 10)))

/** A parsed value back to compact JSON text (numbers as their source text), for messages. */
export const exactJsonText = (json: ExactJson): string => {
  switch (json.type) {
    case "null":
      return "null"
    case "boolean":
      return String(json.value)
    case "number":
      return json.text
    case "string":
      return JSON.stringify(json.value)
    case "array":
      return `[${json.items.map(exactJsonText).join(",")}]`
    case "object":
      return `{${json.members.map(([k, v]) => `${JSON.stringify(k)}:${exactJsonText(v)}`).join(",")}}`
  }
}
