// A scripted websocket client for protows's interop tests.
//
//   node client.mjs URL STEPS
//
// STEPS is a JSON array run in order; each step is one of:
//
//   {"send": HEX, "binary": BOOL, "fin": BOOL}  send bytes as a text or binary
//                                               frame; fin false sends a fragment
//   {"random": N}                               send N random bytes as binary
//   {"ping": TEXT}                              send a ping with that payload
//   {"await": KIND, "count": N}                 wait for N (default 1) events of
//                                               KIND: message, ping, pong, close
//   {"close": CODE, "reason": TEXT}             start the close handshake
//
// Everything that happens is reported on stdout as one JSON object per line
// ({"event": "open" | "message" | "ping" | "pong" | "close" | "sent" |
// "error" | "done", ...}). The script has no deadlines of its own: the Go
// test kills it when it takes too long.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import WebSocket from 'ws';

const [url, stepsJSON] = process.argv.slice(2);
const steps = JSON.parse(stepsJSON);

const report = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

// Events not yet consumed by an "await" step.
const pending = [];
let wake = () => {};
function record(event) {
  report(event);
  pending.push(event);
  wake();
}
async function waitFor(kind) {
  for (;;) {
    const i = pending.findIndex((e) => e.event === kind);
    if (i >= 0) return pending.splice(i, 1)[0];
    await new Promise((resolve) => { wake = resolve; });
  }
}

const ws = new WebSocket(url);
ws.on('message', (data, isBinary) => {
  const small = data.length <= 1024;
  record({
    event: 'message',
    binary: isBinary,
    length: data.length,
    sha256: sha256(data),
    data: small ? data.toString(isBinary ? 'hex' : 'utf8') : undefined,
  });
});
ws.on('ping', (data) => record({ event: 'ping', data: data.toString() }));
ws.on('pong', (data) => record({ event: 'pong', data: data.toString() }));
ws.on('close', (code, reason) => record({ event: 'close', code, reason: reason.toString() }));
ws.on('error', (err) => report({ event: 'error', message: err.message }));

await once(ws, 'open');
report({ event: 'open' });

for (const step of steps) {
  if ('send' in step) {
    ws.send(Buffer.from(step.send, 'hex'), { binary: step.binary, fin: step.fin ?? true });
  } else if ('random' in step) {
    const data = randomBytes(step.random);
    ws.send(data, { binary: true });
    report({ event: 'sent', length: data.length, sha256: sha256(data) });
  } else if ('ping' in step) {
    ws.ping(step.ping);
  } else if ('await' in step) {
    for (let i = 0; i < (step.count ?? 1); i++) await waitFor(step.await);
  } else if ('close' in step) {
    ws.close(step.close, step.reason);
  } else {
    throw new Error(`unknown step ${JSON.stringify(step)}`);
  }
}
if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
report({ event: 'done' });
