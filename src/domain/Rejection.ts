/** Why a message never reaches the lake; sent as the `dlq-reason` header of its dead letter. */
export type RejectReason =
  | "empty_value"
  | "value_too_large"
  | "invalid_utf8"
  | "invalid_json"
  | "invalid_schema"
  | "null_order_id"
  | "null_created_at"
  | "negative_amount"
  /** A change message (logical capture) whose headers, key and value disagree. */
  | "invalid_change"
  /** A row of a table captured beside the orders table whose value does not fit the table's columns. */
  | "invalid_row"

export interface Rejection {
  readonly reason: RejectReason
  readonly detail: string
}

export const rejection = (reason: RejectReason, detail: string): Rejection => ({ reason, detail })
