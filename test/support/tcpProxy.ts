import * as Net from "node:net"

/**
 * A TCP forwarder the test can cut: `down()` drops every connection and refuses new ones, `up()`
 * listens again on the same port. Stands in for a database that goes away and comes back (the
 * integration tests, and the chaos run's `--pg-restart proxy`).
 */
export const startTcpProxy = async (targetHost: string, targetPort: number) => {
  const pairs = new Set<{ readonly client: Net.Socket; readonly upstream: Net.Socket }>()
  let server: Net.Server | null = null
  let port = 0
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = Net.createServer((client) => {
        const upstream = Net.connect(targetPort, targetHost)
        const pair = { client, upstream }
        pairs.add(pair)
        const drop = () => {
          client.destroy()
          upstream.destroy()
          pairs.delete(pair)
        }
        client.on("error", drop).on("close", drop)
        upstream.on("error", drop).on("close", drop)
        client.pipe(upstream).pipe(client)
      })
      server.once("error", reject)
      server.listen(port, "127.0.0.1", () => {
        port = (server!.address() as Net.AddressInfo).port
        resolve()
      })
    })
  await listen()
  return {
    port: () => port,
    /**
     * Stops accepting and cuts what is open (close() alone would wait for those to end by
     * themselves). Returns the local ports of the cut upstream connections: the server's view of
     * their clients, to find the backends behind them.
     */
    down: async (): Promise<ReadonlyArray<number>> => {
      const closing = server
      server = null
      const closed = new Promise<void>((resolve) => (closing === null ? resolve() : closing.close(() => resolve())))
      const ports = [...pairs].map((p) => p.upstream.localPort).filter((p): p is number => p !== undefined)
      for (const pair of pairs) {
        pair.client.destroy()
        pair.upstream.destroy()
      }
      pairs.clear()
      await closed
      return ports
    },
    up: listen
  }
}
