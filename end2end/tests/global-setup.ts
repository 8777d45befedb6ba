// Starts the processes the tests drive: a fresh arch-manager (empty data directory, so it prints a
// one-time setup URL) and two fresh arch-nodes over TLS, all on free loopback ports. Exposes them to the
// tests through environment variables and stops them (and removes the data) afterwards.
// ARCH_MANAGER_BIN / ARCH_NODE_BIN override the binaries; ARCH_E2E_KEEP=1 keeps the run
// directory (data + logs) for inspection.
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes, X509Certificate } from 'node:crypto';

const root = path.resolve(__dirname, '..', '..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => { sock.destroy(); resolve(); });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on 127.0.0.1:${port}`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

function binary(envName: string, name: string): string {
  const bin = process.env[envName] ?? path.join(root, 'target', 'release', name);
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} not found: build it with \`cargo build --release -p ${name === 'arch-node' ? 'node' : 'server'}\``);
  }
  return bin;
}

function start(bin: string, args: string[], log: string): ChildProcess {
  const out = fs.openSync(log, 'a');
  const child = spawn(bin, args, { cwd: root, stdio: ['ignore', 'pipe', out] });
  child.stdout?.on('data', (chunk) => {
    try { fs.appendFileSync(log, chunk); } catch { /* run directory already removed */ }
  });
  child.on('exit', (code, signal) => {
    if (code !== null && code !== 0) {
      console.error(`${path.basename(bin)} exited with ${code}; log: ${log}`);
    } else if (signal && signal !== 'SIGTERM' && signal !== 'SIGKILL') {
      console.error(`${path.basename(bin)} stopped by ${signal}; log: ${log}`);
    }
  });
  return child;
}

/** Waits for the manager's `setup URL: http://…/setup?token=…` line on stdout. */
function setupUrl(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no setup URL within ${timeoutMs} ms; output:\n${seen}`)), timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const m = seen.match(/setup URL: (http\S+\/setup\?token=\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`arch-manager exited (${code}) before printing a setup URL:\n${seen}`)); });
  });
}

/**
 * The SHA-256 fingerprint of the certificate arch-node generated in `dataDir`, as arch-node
 * prints it: 64 lowercase hex digits.
 */
function certificateFingerprint(dataDir: string): string {
  const pem = fs.readFileSync(path.join(dataDir, 'tls-cert.pem'), 'utf8');
  return new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
}

export default async function globalSetup() {
  const manager = binary('ARCH_MANAGER_BIN', 'arch-manager');
  const node = binary('ARCH_NODE_BIN', 'arch-node');
  if (!fs.existsSync(path.join(root, 'target', 'site', 'pkg', 'arch-public.wasm'))) {
    // The manager serves the bundle built into it; without one built first, it has none.
    throw new Error('target/site/pkg/arch-public.wasm not found: run scripts/build-site.sh, then cargo build --release -p server');
  }
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'arch-e2e-'));
  const [managerPort, nodePort, tlsNodePort] = [await freePort(), await freePort(), await freePort()];
  const nodeToken = randomBytes(24).toString('hex');
  const tlsNodeToken = randomBytes(24).toString('hex');

  // Two nodes serving their API over TLS with generated certificates: `node` for nodes.spec.ts
  // (killed there), `tls-node` for node-tls.spec.ts (re-pin and token rotation).
  const nodeProc = start(node, [
    'serve', '--listen', `127.0.0.1:${nodePort}`, '--token', nodeToken,
    '--data-dir', path.join(runDir, 'node'),
  ], path.join(runDir, 'node.log'));
  const tlsNodeProc = start(node, [
    'serve', '--listen', `127.0.0.1:${tlsNodePort}`, '--token', tlsNodeToken,
    '--data-dir', path.join(runDir, 'tls-node'),
  ], path.join(runDir, 'tls-node.log'));
  const managerProc = start(manager, [
    'serve', '--listen', `127.0.0.1:${managerPort}`, '--data-dir', path.join(runDir, 'manager'),
    '--pull-interval', '1s', '--pull-timeout', '3s',
  ], path.join(runDir, 'manager.log'));
  const stopAll = () =>
    Promise.all([managerProc, nodeProc, tlsNodeProc].map((p) => new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      const force = setTimeout(() => p.kill('SIGKILL'), 10_000);
      p.once('exit', () => { clearTimeout(force); resolve(); });
      p.kill('SIGTERM');
    })));
  try {
    const url = await setupUrl(managerProc, 60_000);
    await waitForPort(managerPort, 30_000);
    await waitForPort(nodePort, 30_000);
    await waitForPort(tlsNodePort, 30_000);
    Object.assign(process.env, {
      ARCH_BASE_URL: `http://127.0.0.1:${managerPort}`,
      ARCH_SETUP_URL: url,
      ARCH_NODE_PORT: String(nodePort),
      ARCH_NODE_TOKEN: nodeToken,
      ARCH_NODE_PID: String(nodeProc.pid),
      ARCH_NODE_FINGERPRINT: certificateFingerprint(path.join(runDir, 'node')),
      ARCH_TLS_NODE_PORT: String(tlsNodePort),
      ARCH_TLS_NODE_TOKEN: tlsNodeToken,
      ARCH_TLS_NODE_PID: String(tlsNodeProc.pid),
      ARCH_TLS_NODE_FINGERPRINT: certificateFingerprint(path.join(runDir, 'tls-node')),
      ARCH_RUN_DIR: runDir,
    });
  } catch (err) {
    await stopAll();
    throw err;
  }

  return async () => {
    await stopAll();
    if (process.env.ARCH_E2E_KEEP) console.log(`arch e2e run directory kept: ${runDir}`);
    else fs.rmSync(runDir, { recursive: true, force: true });
  };
}
