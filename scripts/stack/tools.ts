import { join } from "node:path"
import { commandExists } from "./proc.ts"

/** The JVM to run, honouring JAVA_HOME the way Kafka's own bin/kafka-run-class.sh does. */
export const javaCommand = (): string => {
  const javaHome = process.env["JAVA_HOME"]
  return javaHome ? join(javaHome, "bin", "java") : "java"
}

export const mavenCommand = (): string => "mvn"

/**
 * What is missing to run the broker without Docker, each with how to get it.
 * Maven is only needed until the jars are cached.
 */
export const missingLocalKafkaTools = (options: { readonly needMaven: boolean }): string[] => {
  const missing: string[] = []
  const java = javaCommand()
  if (!commandExists(java)) {
    missing.push(
      process.env["JAVA_HOME"]
        ? `java (JAVA_HOME=${process.env["JAVA_HOME"]} has no bin/java; fix JAVA_HOME or unset it)`
        : "java 17+ (Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless; macOS: brew install openjdk@17)"
    )
  }
  if (options.needMaven && !commandExists(mavenCommand())) {
    missing.push("mvn, to fetch the Kafka jars from Maven Central once (Debian/Ubuntu: sudo apt-get install -y maven; macOS: brew install maven)")
  }
  return missing
}
