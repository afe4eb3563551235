import { Console, Data, Effect } from "effect"
import { demoLayout, demoNames, resetDemoDir } from "./demoLayout.ts"
import {
  checkText,
  drainingText,
  isComplete,
  progressText,
  resultLine,
  runningText,
  startingText,
  summaryText,
  whereText
} from "./demoOutput.ts"
import { runPipeline } from "./demoPipeline.ts"
import { embeddedPostgres } from "./embeddedPostgres.ts"
import { summariseLake } from "./summary.ts"

export class DemoCheckError extends Data.TaggedError("DemoCheckError")<{
  readonly generated: number
  readonly lakeRows: number
}> {
  override get message() {
    return `the lake does not hold every row generated exactly once (orders: ${this.lakeRows} rows for ${this.generated} generated; see the check above)`
  }
}

export interface DemoOptions {
  readonly dir: string
  readonly seconds: number
  readonly rate: number
  readonly seed: number
}

/** Capture every half second (the real default is 5 s) so orders reach the lake while you watch. */
const batchInterval = 0.5

/**
 * The whole pipeline on one machine with nothing but Node: embedded PostgreSQL, the in-process
 * topic, a real Parquet lake; then DuckDB's reading of the lake. Fails when the lake does not hold
 * every generated order exactly once.
 */
export const runDemo = Effect.fn("Demo.run")(function*(options: DemoOptions) {
  const layout = demoLayout(options.dir)
  yield* resetDemoDir(layout)
  yield* Console.log(startingText(options.seconds, options.rate))

  // PostgreSQL lives only as long as the pipeline: stopped before DuckDB reads the lake.
  const result = yield* Effect.scoped(Effect.gen(function*() {
    const postgres = yield* embeddedPostgres(demoNames.table)
    yield* Console.log(runningText(postgres, layout, batchInterval))
    return yield* runPipeline({
      layout,
      postgres,
      rate: options.rate,
      seconds: options.seconds,
      seed: options.seed,
      batchInterval,
      progressEvery: "3 seconds",
      drainTimeout: "20 seconds",
      onProgress: (progress, elapsed) => Console.log(progressText(progress, elapsed)),
      onGenerated: Console.log(drainingText)
    })
  }))

  const summary = yield* summariseLake(layout.lake, layout.restaurantsLake)
  yield* Console.log(summaryText(summary))
  yield* Console.log(checkText(result, summary))
  yield* Console.log(whereText(layout, summary))
  yield* Console.log(resultLine(layout, result, summary))
  if (!isComplete(result, summary)) {
    return yield* new DemoCheckError({ generated: result.inserted, lakeRows: summary.rows })
  }
})
