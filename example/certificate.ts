import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generate } from 'selfsigned';

/** A TLS key and certificate, PEM. */
export interface Certificate {
  key: string;
  cert: string;
}

const VALID_DAYS = 365;

/**
 * A self-signed certificate for `localhost` and `127.0.0.1`, made on first use and kept in
 * `<dataDir>/tls/` (`localhost-key.pem`, `localhost-cert.pem`); made anew once expired. For the
 * demo only: browsers warn about it until you trust it (or use a real certificate).
 */
export async function localhostCertificate(dataDir: string): Promise<Certificate & { file: string; created: boolean }> {
  const dir = join(dataDir, 'tls');
  const keyFile = join(dir, 'localhost-key.pem');
  const certFile = join(dir, 'localhost-cert.pem');
  try {
    const [key, cert] = await Promise.all([readFile(keyFile, 'utf8'), readFile(certFile, 'utf8')]);
    if (Date.parse(new X509Certificate(cert).validTo) > Date.now() + 24 * 3600_000) return { key, cert, file: certFile, created: false };
  } catch {
    // missing or unreadable: make a new one
  }
  const now = Date.now();
  const made = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + VALID_DAYS * 24 * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(keyFile, made.private, { mode: 0o600 });
  await writeFile(certFile, made.cert);
  return { key: made.private, cert: made.cert, file: certFile, created: true };
}
