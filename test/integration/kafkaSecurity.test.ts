/**
 * Kafka over SASL_SSL with ACLs enforced, end to end: a broker of the suite's Kafka jars with a second
 * listener (scripts/stack/kafkaBroker.ts: SecuredListener) that speaks TLS with a certificate from a
 * CA made here, logs users in with SCRAM (stored at format time) and authorises with KRaft's
 * StandardAuthorizer. The producer and the consumer each log in as their own user with the least
 * rights the README lists. A wrong password, an untrusted CA and a missing ACL each stop a program at
 * start with what to fix, the secret never printed, and nothing lost: the orders wait in PostgreSQL
 * or the topic and arrive once the fault is fixed.
 */
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, type ITopicConfig, Kafka, logLevel, ResourcePatternTypes } from "kafkajs"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, expect, it } from "vitest"
import { type LocalKafka, startLocalKafka } from "../../scripts/stack/kafkaBroker.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { summariseLake } from "../support/lakeSummary.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { readAllRaw } from "../support/rawKafka.ts"
import { makeClientCertificate, makeTestCertificates, type TestCertificates } from "../support/testCertificates.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

const users = {
  producer: { name: "orders_capture", password: "capture-Secret-1" },
  consumer: { name: "orders_lake", password: "lake-Secret-2" }
}

describeIntegration("Kafka over TLS (SASL_SSL, mutual TLS) with ACLs", (endpoints) => {
  let broker: LocalKafka
  let certs: TestCertificates
  let client: { readonly cert: string; readonly key: string }
  let dir: string
  const pipelines: Array<TestPipeline> = []

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fop-kafka-tls-"))
    mkdirSync(join(dir, "certs"))
    certs = makeTestCertificates(join(dir, "certs"), ["localhost"])
    client = makeClientCertificate(join(dir, "certs"), "orders_mtls")
    broker = await startLocalKafka({
      secured: {
        port: 0,
        host: "localhost",
        keystorePem: certs.serverKeystore,
        scramUsers: [users.producer, users.consumer],
        mutualTlsPort: 0,
        clientCaPem: certs.ca
      }
    })
  }, 180_000)

  afterAll(async () => {
    for (const pipeline of pipelines) await pipeline.close().catch(() => undefined)
    await broker?.stop()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  /** The stack's own door: the PLAINTEXT listener, whose anonymous principal is a super user. */
  const superAdmin = async <A>(use: (admin: ReturnType<Kafka["admin"]>) => Promise<A>) => {
    const admin = new Kafka({ clientId: "acl-setup", brokers: [broker.brokers], logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    try {
      return await use(admin)
    } finally {
      await admin.disconnect()
    }
  }

  const allow = (principal: string, resourceType: AclResourceTypes, resourceName: string, operation: AclOperationTypes, pattern = ResourcePatternTypes.LITERAL) => ({
    resourceType,
    resourceName,
    resourcePatternType: pattern,
    principal: `User:${principal}`,
    host: "*",
    operation,
    permissionType: AclPermissionTypes.ALLOW
  })

  const secured = (user: { name: string; password: string }, file: string, ca = certs.ca): Record<string, string> => {
    writeFileSync(join(dir, file), `${user.password}\n`)
    return {
      KAFKA_BROKERS: broker.securedBrokers!,
      KAFKA_SECURITY_PROTOCOL: "SASL_SSL",
      KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
      KAFKA_SASL_USERNAME: user.name,
      KAFKA_SASL_PASSWORD_FILE: join(dir, file),
      KAFKA_SSL_CA_LOCATION: ca
    }
  }

  it("moves orders from PostgreSQL to the lake with each program as its own user and only the rights it needs", async () => {
    const pipeline = await makeTestPipeline({ ...endpoints, kafkaBrokers: broker.brokers }, "kafkatls")
    pipelines.push(pipeline)
    const topics: Array<ITopicConfig> = [{ topic: pipeline.topic, numPartitions: 3 }, { topic: pipeline.dlq, numPartitions: 1 }]
    const group = `${pipeline.topic}_lake_writer`
    await superAdmin(async (admin) => {
      // Topics made beforehand: the producer then needs no CREATE right.
      await admin.createTopics({ topics, waitForLeaders: true })
      await admin.createAcls({
        acl: [
          allow(users.producer.name, AclResourceTypes.TOPIC, pipeline.topic, AclOperationTypes.WRITE),
          allow(users.producer.name, AclResourceTypes.TOPIC, pipeline.topic, AclOperationTypes.DESCRIBE),
          allow(users.producer.name, AclResourceTypes.TOPIC, pipeline.dlq, AclOperationTypes.WRITE),
          allow(users.producer.name, AclResourceTypes.TOPIC, pipeline.dlq, AclOperationTypes.DESCRIBE),
          allow(users.consumer.name, AclResourceTypes.TOPIC, pipeline.topic, AclOperationTypes.READ),
          allow(users.consumer.name, AclResourceTypes.TOPIC, pipeline.topic, AclOperationTypes.DESCRIBE),
          allow(users.consumer.name, AclResourceTypes.TOPIC, pipeline.dlq, AclOperationTypes.WRITE),
          allow(users.consumer.name, AclResourceTypes.TOPIC, pipeline.dlq, AclOperationTypes.DESCRIBE)
          // The group's READ is granted below, after the consumer was refused without it.
        ]
      })
    })
    await pipeline.pool.query(insertOrdersSql(pipeline.table, 1, 400, "2026-04-01T08:00:00Z", 30))

    // A wrong password and an untrusted CA stop the producer at start; the cursor does not move.
    const wrongPassword = await pipeline.run("producer", secured({ ...users.producer, password: "not-it-Secret-9" }, "wrong"))
    expect(wrongPassword.code).not.toBe(0)
    expect(wrongPassword.stdout + wrongPassword.stderr).toContain("the broker refused the SASL login")
    expect(wrongPassword.stdout + wrongPassword.stderr).not.toContain("not-it-Secret-9")
    const wrongCa = await pipeline.run("producer", secured(users.producer, "producer", certs.otherCa))
    expect(wrongCa.code).not.toBe(0)
    expect(wrongCa.stdout + wrongCa.stderr).toContain("the broker's TLS certificate is not trusted")
    for (const run of [wrongPassword, wrongCa]) expect(run.ms).toBeLessThan(60_000)
    expect(await readAllRaw(broker.brokers, pipeline.topic, 3_000)).toHaveLength(0)

    const produced = pipeline.ok(await pipeline.run("producer", secured(users.producer, "producer")))
    expect(pipeline.annotation(produced, "producer starting")?.["kafka_security"]).toBe(`SASL_SSL SCRAM-SHA-512 as ${users.producer.name}`)
    expect(produced.stdout + produced.stderr).not.toContain(users.producer.password)
    expect(await readAllRaw(broker.brokers, pipeline.topic)).toHaveLength(400)

    // The consumer without READ on its group: refused at start, naming the right; the lake stays empty.
    const refused = await pipeline.run("consumer", secured(users.consumer, "consumer"))
    expect(refused.code, refused.stdout + refused.stderr).not.toBe(0)
    // kafkajs drops the broker's GROUP_AUTHORIZATION_FAILED on the way and says it found no coordinator;
    // the consumer stops at once (its client gave up) with the right it probably lacks.
    expect(refused.stdout + refused.stderr).toMatch(/deny the consumer group|the consumer needs READ on its group/)
    expect(refused.ms).toBeLessThan(30_000)
    expect((await summariseLake(pipeline.lake)).rows).toBe(0)

    await superAdmin((admin) => admin.createAcls({ acl: [allow(users.consumer.name, AclResourceTypes.GROUP, group, AclOperationTypes.READ)] }))
    pipeline.ok(await pipeline.run("consumer", secured(users.consumer, "consumer")))
    const lake = await summariseLake(pipeline.lake)
    expect(lake.rows).toBe(400)
    expect(lake.distinctIds).toBe(400)
  }, 300_000)

  it("publishes over mutual TLS as the certificate's subject; without a client certificate it stops, naming the keys", async () => {
    const pipeline = await makeTestPipeline({ ...endpoints, kafkaBrokers: broker.brokers }, "kafkamtls")
    pipelines.push(pipeline)
    const principal = "CN=orders_mtls"
    await superAdmin(async (admin) => {
      await admin.createTopics({ topics: [{ topic: pipeline.topic, numPartitions: 3 }, { topic: pipeline.dlq, numPartitions: 1 }], waitForLeaders: true })
      await admin.createAcls({
        acl: [pipeline.topic, pipeline.dlq].flatMap((topic) => [
          allow(principal, AclResourceTypes.TOPIC, topic, AclOperationTypes.WRITE),
          allow(principal, AclResourceTypes.TOPIC, topic, AclOperationTypes.DESCRIBE)
        ])
      })
    })
    await pipeline.pool.query(insertOrdersSql(pipeline.table, 1, 60, "2026-04-02T08:00:00Z", 30))
    const tls = { KAFKA_BROKERS: broker.mutualTlsBrokers!, KAFKA_SECURITY_PROTOCOL: "SSL", KAFKA_SSL_CA_LOCATION: certs.ca }

    const anonymous = await pipeline.run("producer", tls)
    expect(anonymous.code).not.toBe(0)
    expect(anonymous.stdout + anonymous.stderr).toContain("kafka.ssl_certificate_location")
    expect(await readAllRaw(broker.brokers, pipeline.topic, 3_000)).toHaveLength(0)

    const produced = pipeline.ok(await pipeline.run("producer", {
      ...tls,
      KAFKA_SSL_CERTIFICATE_LOCATION: client.cert,
      KAFKA_SSL_KEY_LOCATION: client.key
    }))
    expect(pipeline.annotation(produced, "producer starting")?.["kafka_security"]).toBe("SSL")
    expect(await readAllRaw(broker.brokers, pipeline.topic)).toHaveLength(60)
  }, 300_000)
})
