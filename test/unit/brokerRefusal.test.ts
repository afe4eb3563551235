import { describe, expect, it } from "vitest"
import { BrokerError, brokerRefusal, isBrokerRefusal } from "../../src/services/errors.ts"

/** Shaped as kafkajs throws them: a protocol error with its Kafka error type, wrapped by the retrier. */
const protocolError = (type: string) => Object.assign(new Error(`Not authorized (${type})`), { name: "KafkaJSProtocolError", type })
const retried = (cause: Error) => Object.assign(new Error(cause.message), { name: "KafkaJSNumberOfRetriesExceeded", cause })

describe("brokerRefusal", () => {
  it("names what to fix for a refused login, a missing ACL and an untrusted certificate, through kafkajs's wrapping", () => {
    const sasl = Object.assign(new Error("SASL SCRAM SHA256 authentication failed: invalid credentials"), { name: "KafkaJSSASLAuthenticationError" })
    expect(brokerRefusal(retried(sasl))).toContain("check kafka.sasl_mechanism, kafka.sasl_username and kafka.sasl_password")
    expect(brokerRefusal(retried(protocolError("TOPIC_AUTHORIZATION_FAILED")))).toContain("WRITE and DESCRIBE")
    expect(brokerRefusal(protocolError("GROUP_AUTHORIZATION_FAILED"))).toContain("READ on its group")
    expect(brokerRefusal({ errors: [protocolError("CLUSTER_AUTHORIZATION_FAILED")] })).toContain("CREATE")
    const tls = Object.assign(new Error("Connection error: self-signed certificate in certificate chain"), { name: "KafkaJSConnectionError", code: "SELF_SIGNED_CERT_IN_CHAIN" })
    expect(brokerRefusal(retried(tls))).toContain("kafka.ssl_ca_location")
    expect(new BrokerError({ operation: "connect", cause: tls }).message).toContain("not trusted")
  })

  it("says what a coordinator kafkajs could not find may mean, and stops when the client gave up", () => {
    const notFound = Object.assign(new Error("Failed to find group coordinator"), { name: "KafkaJSGroupCoordinatorNotFound" })
    const error = new BrokerError({ operation: "fetch", cause: notFound, fatal: true })
    expect(error.message).toContain("the consumer needs READ on its group")
    expect(isBrokerRefusal(error)).toBe(true)
    expect(isBrokerRefusal(new BrokerError({ operation: "fetch", cause: notFound }))).toBe(false)
  })

  it("leaves outages to be waited out", () => {
    const refused = Object.assign(new Error("Connection error: connect ECONNREFUSED 127.0.0.1:9092"), { name: "KafkaJSConnectionError", code: "ECONNREFUSED" })
    expect(brokerRefusal(retried(refused))).toBeNull()
    expect(brokerRefusal(protocolError("NOT_LEADER_OR_FOLLOWER"))).toBeNull()
    expect(isBrokerRefusal(new BrokerError({ operation: "publish", cause: refused }))).toBe(false)
    expect(isBrokerRefusal(new BrokerError({ operation: "publish", cause: protocolError("TOPIC_AUTHORIZATION_FAILED") }))).toBe(true)
  })
})
