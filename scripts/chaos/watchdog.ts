import { spawn } from "node:child_process"

/**
 * Ties the chaos run's children to the run itself. The broker and the programs run in their own
 * process groups (so a terminal's Ctrl-C reaches only the run, which then stops them in order), which
 * also means nothing stops them if the run is SIGKILLed. This tiny detached shell does: once the
 * owner is gone it SIGKILLs whatever pid the files name — only if that pid still runs a broker
 * (`kafka.Kafka`), a pipeline program (`dist/bin/`) or the S3 server (`s3proxy`), since pids get reused — and removes `removeDirs`.
 * Pid files are read at that moment, so restarted processes are covered too.
 */
export const spawnWatchdog = (options: {
  readonly ownerPid: number
  readonly pidFiles: ReadonlyArray<string>
  readonly removeDirs: ReadonlyArray<string>
}): void => {
  const script = `
owner=$1; shift
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
for arg in "$@"; do
  case "$arg" in
    pid:*) file=\${arg#pid:}
      pid=$(head -n1 "$file" 2>/dev/null)
      [ -n "$pid" ] || continue
      if grep -qa -e "kafka[.]Kafka" -e "dist/bin/" -e "s3proxy" "/proc/$pid/cmdline" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi ;;
  esac
done
sleep 1
for arg in "$@"; do
  case "$arg" in dir:*) rm -rf "\${arg#dir:}" ;; esac
done`
  const args = [
    ...options.pidFiles.map((file) => `pid:${file}`),
    ...options.removeDirs.map((dir) => `dir:${dir}`)
  ]
  const child = spawn("sh", ["-c", script, "chaos-watchdog", String(options.ownerPid), ...args], {
    detached: true,
    stdio: "ignore"
  })
  child.on("error", () => undefined)
  child.unref()
}
