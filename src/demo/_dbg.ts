import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { runDemo } from "./runDemo.ts"
setInterval(() => console.log("SIGINT listeners:", process.listeners("SIGINT").length, process.listeners("SIGINT").map((f) => f.name)), 3000).unref()
const origOn = process.on.bind(process)
;(process as any).on = (ev: string, fn: any) => { if (String(ev).startsWith("SIG")) console.log("process.on", ev, new Error().stack?.split("\n").slice(2, 5).join(" | ")); return origOn(ev, fn) }
runDemo({ dir: "/tmp/demo-int", seconds: 20, rate: 50, seed: 1 }).pipe(Effect.onInterrupt(() => Effect.sync(() => console.log("INTERRUPTED"))), NodeRuntime.runMain)
