import * as Net from "node:net"

/**
 * A TCP forwarder the test can cut: `down()` drops every connection and refuses new ones, `up()`
 * listens again on the same port. Stands in for a database that goes away and comes back.
 */
export const startTcpProxy = async (targetHost: string, targetPort: number) => {
  const sockets = new Set<Net.Socket>()
  let server: Net.Server | null = null
  let port = 0
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = Net.createServer((client) => {
        const upstream = Net.connect(targetPort, targetHost)
        sockets.add(client).add(upstream)
        const drop = () => {
          client.destroy()
          upstream.destroy()
          sockets.delete(client)
          sockets.delete(upstream)
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
    down: async () => {
      for (const socket of sockets) socket.destroy()
      sockets.clear()
      await new Promise<void>((resolve) => (server === null ? resolve() : server.close(() => resolve())))
      server = null
    },
    up: listen
  }
}
