import { execFileSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

export interface TestCertificates {
  /** The CA that signed the server's certificate (PEM). */
  readonly ca: string
  /** A CA that signed nothing of the server's (PEM). */
  readonly otherCa: string
  /** The server's unencrypted PKCS#8 key and its certificate (PEM). */
  readonly serverKey: string
  readonly serverCert: string
  /** Key then certificate in one file: Kafka's PEM keystore. */
  readonly serverKeystore: string
  /** The same as PKCS#12 (password `changeit`), for Java servers that take no PEM (S3Proxy's Jetty). */
  readonly serverPkcs12: string
}

const openssl = (args: ReadonlyArray<string>, cwd: string) => execFileSync("openssl", [...args], { cwd, stdio: "pipe" })

/**
 * A CA made for one test, and a server certificate it signed for exactly `names` (DNS names), valid
 * two days: a client that connects by any other name (127.0.0.1) fails a host-name check.
 */
/** A client certificate for `commonName`, signed by the CA made in `dir` (mutual TLS); its key is PKCS#8 PEM. */
export const makeClientCertificate = (dir: string, commonName: string): { readonly cert: string; readonly key: string } => {
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${commonName}`, "-keyout", `${commonName}.key`, "-out", `${commonName}.csr`], dir)
  writeFileSync(join(dir, `${commonName}.ext`), "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n")
  openssl(["x509", "-req", "-in", `${commonName}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", `${commonName}.ext`, "-out", `${commonName}.crt`], dir)
  return { cert: join(dir, `${commonName}.crt`), key: join(dir, `${commonName}.key`) }
}

export const makeTestCertificates = (dir: string, names: ReadonlyArray<string>): TestCertificates => {
  for (const ca of ["ca", "other-ca"]) {
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=food-orders test ${ca}`, "-keyout", `${ca}.key`, "-out", `${ca}.crt`], dir)
  }
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${names[0]}`, "-keyout", "server.key", "-out", "server.csr"], dir)
  writeFileSync(join(dir, "server.ext"), `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`)
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.crt"], dir)
  writeFileSync(join(dir, "server.keystore.pem"), Buffer.concat([readFileSync(join(dir, "server.key")), readFileSync(join(dir, "server.crt"))]))
  openssl(["pkcs12", "-export", "-in", "server.crt", "-inkey", "server.key", "-name", "server", "-passout", "pass:changeit", "-out", "server.p12"], dir)
  return {
    ca: join(dir, "ca.crt"),
    otherCa: join(dir, "other-ca.crt"),
    serverKey: join(dir, "server.key"),
    serverCert: join(dir, "server.crt"),
    serverKeystore: join(dir, "server.keystore.pem"),
    serverPkcs12: join(dir, "server.p12")
  }
}
