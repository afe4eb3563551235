/**
 * The orders table's Delta schema written out by hand, as PROTOCOL.md spells it, for tests that build
 * a table without our writer (so that Spark, not our code, judges whether it is right).
 */
const field = (name: string, type: string) => ({ name, type, nullable: true, metadata: {} })

export const handWrittenOrdersSchema = JSON.stringify({
  type: "struct",
  fields: [
    field("order_id", "long"),
    field("customer_name", "string"),
    field("restaurant_name", "string"),
    field("item", "string"),
    field("order_status", "string"),
    field("amount", "decimal(10,2)"),
    field("created_at", "timestamp"),
    field("date", "date")
  ]
})
