// An echo websocket server for protows's interop tests.
//
//   node server.mjs PORT
//
// Listens on 127.0.0.1:PORT (0 picks a free port) and echoes every message
// with its type. It reports on stdout, one JSON object per line:
// {"event": "listening", "port": N} once, then "connection", "message" and
// "close" events. It runs until it is killed.
import { WebSocketServer } from 'ws';

const report = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0) });
wss.on('listening', () => report({ event: 'listening', port: wss.address().port }));
wss.on('error', (err) => {
  report({ event: 'error', message: err.message });
  process.exit(1);
});
wss.on('connection', (ws) => {
  report({ event: 'connection' });
  ws.on('message', (data, isBinary) => {
    report({ event: 'message', binary: isBinary, data: data.toString(isBinary ? 'hex' : 'utf8') });
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code, reason) => report({ event: 'close', code, reason: reason.toString() }));
});
