import { Layer, Logger } from "effect"

/**
 * logfmt lines by default, JSON lines with LOG_FORMAT=json; both carry the annotations as fields.
 * NodeRuntime.runMain swaps the default logger for its pretty one, so both are removed.
 */
export const loggerLayer = Layer.mergeAll(
  Logger.remove(Logger.defaultLogger),
  Logger.remove(Logger.prettyLoggerDefault),
  Logger.add(Logger.withConsoleLog(process.env["LOG_FORMAT"] === "json" ? Logger.jsonLogger : Logger.logfmtLogger))
)
