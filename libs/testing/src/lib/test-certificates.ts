import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A certificate and its unencrypted key, PEM files. */
export interface TestCertificate {
  certFile: string;
  keyFile: string;
}

/** A throwaway certificate authority (openssl) in a directory only this account reads. */
export interface TestCertificateAuthority {
  /** What clients (or a server checking clients) trust. */
  caFile: string;
  /**
   * A certificate signed by the CA: for a server on 127.0.0.1/localhost (serverAuth) or a client
   * (clientAuth), named `name` (CN) in `<name>.crt` and `<name>.key`.
   */
  issue(name: string, usage: 'serverAuth' | 'clientAuth'): TestCertificate;
}

/** Runs openssl in `dir`; a failure throws with the end of its stderr. */
export function openssl(dir: string, args: string[]): void {
  const result = spawnSync('openssl', args, { encoding: 'utf8', cwd: dir, timeout: 60_000 });
  if (result.status !== 0)
    throw new Error(`openssl ${args[0]} failed (exit ${result.status}): ${`${result.stderr ?? ''}`.trim().slice(-500)}`);
}

/** Makes a CA in `dir` (ca.pem, ca.key), valid two days. */
export function makeTestCertificateAuthority(dir: string, subject = 'rookery test CA'): TestCertificateAuthority {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string) => join(dir, name);
  const days = '2';
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-days',
    days,
    '-subj',
    `/CN=${subject}`,
  ]);
  return {
    caFile: file('ca.pem'),
    issue(name, usage) {
      const subjectName = usage === 'serverAuth' ? '127.0.0.1' : name;
      openssl(dir, [
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        file(`${name}.key`),
        '-out',
        file(`${name}.csr`),
        '-subj',
        `/CN=${subjectName}`,
      ]);
      const extensions =
        usage === 'serverAuth'
          ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'
          : 'extendedKeyUsage=clientAuth\n';
      writeFileSync(file(`${name}.ext`), extensions);
      openssl(dir, [
        'x509',
        '-req',
        '-in',
        file(`${name}.csr`),
        '-CA',
        file('ca.pem'),
        '-CAkey',
        file('ca.key'),
        '-CAcreateserial',
        '-out',
        file(`${name}.crt`),
        '-days',
        days,
        '-extfile',
        file(`${name}.ext`),
      ]);
      return { certFile: file(`${name}.crt`), keyFile: file(`${name}.key`) };
    },
  };
}
