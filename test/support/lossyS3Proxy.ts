import * as Http from "node:http"

/**
 * An HTTP forwarder to an S3 server that can lose the answer to a commit: a put-if-absent of a Delta
 * commit file (`_delta_log/<20 digits>.json`, `If-None-Match: *`) goes through, the server applies
 * it, and when `lose()` says so its answer is thrown away and the client's connection cut. The write
 * landed; the client never hears so (what a connection cut at the wrong moment does). Used by
 * test/integration/commitOutcomeS3.test.ts and the chaos run's `--lake s3`.
 */
export const startLossyS3Proxy = async (endpoint: string, lose: () => boolean) => {
  const target = new URL(endpoint)
  let lost = 0
  const server = Http.createServer((request, response) => {
    const upstream = Http.request(
      { host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers },
      (answer) => {
        const commitPut = request.method === "PUT" && /_delta_log\/\d{20}\.json(\?|$)/.test(request.url ?? "") && request.headers["if-none-match"] === "*"
        if (commitPut && lose()) {
          lost += 1
          answer.resume()
          answer.on("end", () => request.socket.destroy())
          return
        }
        response.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(response)
      }
    )
    // The server away (a chaos restart): the client sees a cut connection and retries.
    upstream.on("error", () => response.destroy())
    request.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as { port: number }).port
  return {
    endpoint: `http://127.0.0.1:${port}`,
    /** Answers lost so far. */
    lost: () => lost,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
