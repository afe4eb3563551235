import { createConnection, createServer, type Server } from "node:net"

/** Whether something accepts TCP connections on host:port. */
export const isPortOpen = (port: number, host = "127.0.0.1", timeoutMs = 1000): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createConnection({ port, host })
    const done = (open: boolean) => {
      socket.destroy()
      resolve(open)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

const listen = (port: number, host: string): Promise<Server | null> =>
  new Promise((resolve) => {
    const server = createServer()
    server.once("error", () => resolve(null))
    server.listen({ port, host, exclusive: true }, () => resolve(server))
  })

const close = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()))

/** Whether we could bind host:port right now (nothing listens there, not even on 0.0.0.0). */
export const isPortFree = async (port: number, host = "127.0.0.1"): Promise<boolean> => {
  const server = await listen(port, host)
  if (server === null) return false
  await close(server)
  return !(await isPortOpen(port, host, 300))
}

/**
 * Distinct ports the OS reports free. All are held open together while choosing, so the
 * same port is never returned twice; there is still a small window before the caller binds them.
 */
export const findFreePorts = async (count: number, host = "127.0.0.1"): Promise<number[]> => {
  const servers: Server[] = []
  try {
    for (let i = 0; i < count; i++) {
      const server = await listen(0, host)
      if (server === null) throw new Error(`could not bind an ephemeral port on ${host}`)
      servers.push(server)
    }
    return servers.map((server) => {
      const address = server.address()
      if (address === null || typeof address === "string") throw new Error("unexpected server address")
      return address.port
    })
  } finally {
    await Promise.all(servers.map(close))
  }
}
