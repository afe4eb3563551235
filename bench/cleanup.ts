/**
 * Everything the benchmark starts (broker, programs, generator, kcat, tables, topics, temp dirs)
 * registers how to undo it here. `runAll` undoes in reverse order, once, and is called on normal
 * completion, on failure and on SIGINT/SIGTERM/SIGHUP.
 */
export type Undo = () => Promise<void> | void

interface Entry {
  readonly label: string
  readonly undo: Undo
}

const entries: Array<Entry> = []
let running: Promise<void> | undefined

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`)

/** Registers an undo step; returns a function that runs it now (and unregisters it). */
export const onCleanup = (label: string, undo: Undo): (() => Promise<void>) => {
  const entry: Entry = { label, undo }
  entries.push(entry)
  return async () => {
    const index = entries.indexOf(entry)
    if (index < 0) return
    entries.splice(index, 1)
    await runOne(entry)
  }
}

const runOne = async (entry: Entry) => {
  try {
    await entry.undo()
  } catch (error) {
    say(`cleanup "${entry.label}" failed: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/** Runs every registered undo step, newest first. Idempotent. */
export const runAll = (): Promise<void> =>
  (running ??= (async () => {
    while (entries.length > 0) await runOne(entries.pop()!)
  })())

/** Ctrl-C and friends: clean up, then exit with the conventional code. A second signal exits at once. */
export const installSignalHandlers = (): void => {
  let signalled = false
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    process.on(signal, () => {
      if (signalled) {
        say(`${signal} again: exiting without finishing cleanup`)
        process.exit(code)
      }
      signalled = true
      say(`${signal}: stopping everything the benchmark started`)
      void runAll().finally(() => process.exit(code))
    })
  }
}
