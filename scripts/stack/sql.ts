// The source table's DDL lives with the PostgreSQL layer (the demo creates its table with it too);
// the stack, tests and benchmark import it from here as before.
export * from "../../src/layers/postgres/ordersTableDdl.ts"
