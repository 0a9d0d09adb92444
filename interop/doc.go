// Package interop holds interoperability tests of protows against another
// websocket implementation, Node's ws package (npm), in both directions: a
// scripted ws client (node/client.mjs) against a protows echo server, for
// text, binary, 1 MiB and fragmented messages, pings and pongs both ways,
// the read limit and close codes both ways; and a protows client
// (wsactor.SpawnClient) against a ws echo server (node/server.mjs) that is
// killed and started again on the same port, which the client must survive
// by reconnecting with the same PID. The tests need node on PATH and the ws
// package installed next to the scripts: run `cd interop/node && npm install`
// (or `npm ci`) once, then `go test ./interop/`. Without them the tests skip
// and say so; they never run npm themselves.
package interop
