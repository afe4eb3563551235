import { parseArgs } from "node:util"
import { defaultConfigFile } from "../config/loadConfig.ts"

export interface CliOptions {
  readonly config: string
  readonly once: boolean
  /** Producer, capture.mode logical: drop the replication slot and publish the whole table again. */
  readonly resnapshot: boolean
  /** Producer: publish these tables of `tables:` again from a new snapshot (poll: from the first key), the others untouched. */
  readonly resnapshotTables: ReadonlyArray<string>
}

/** `--config FILE`, `--once`, `--help`. Prints usage and exits on `--help` or an unknown flag. */
export const parseCli = (program: string, summary: string, argv = process.argv.slice(2)): CliOptions => {
  const usage = `Usage: npm run ${program} -- [--config FILE] [--once]

${summary}

Options:
  --config FILE  configuration file (default ${defaultConfigFile}); every key can be overridden
                 from the environment as SECTION_KEY, e.g. KAFKA_BROKERS, POSTGRES_PASSWORD
  --once         one cycle, then exit (for scripts and tests)
  --resnapshot   producer with capture.mode logical: drop the replication slot and its state,
                 then publish the whole table again from a new snapshot (after a lost slot)
  --resnapshot-table NAME
                 producer: publish this table of \`tables:\` again from a new snapshot (poll: from
                 its first key), the orders and the other tables untouched; repeatable. The way
                 out after a change its Delta table cannot follow (the consumer's error says when)
  --help         this text

Logs: LOG_FORMAT=json for JSON lines (default logfmt). Stops cleanly on SIGINT/SIGTERM.`
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        config: { type: "string", default: defaultConfigFile },
        once: { type: "boolean", default: false },
        resnapshot: { type: "boolean", default: false },
        "resnapshot-table": { type: "string", multiple: true, default: [] },
        help: { type: "boolean", default: false }
      },
      strict: true,
      allowPositionals: false
    })
    if (values.help) {
      process.stdout.write(usage + "\n")
      process.exit(0)
    }
    return { config: values.config, once: values.once, resnapshot: values.resnapshot, resnapshotTables: values["resnapshot-table"] }
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usage}\n`)
    process.exit(2)
  }
}
