'use strict';
// Baseline consumer: the official Pub/Sub Node.js client (StreamingPull over gRPC) draining one
// subscription of the emulator with the client's default flow control, acking every message.
// It serves its running count as Prometheus text on 127.0.0.1:<port>/metrics so that
// bench_load can pace its publisher and time the run the same way it does for data-router.
//
//   PUBSUB_EMULATOR_HOST=127.0.0.1:8085 node pull.js --project bench --subscription node-bench \
//       --port 9101 [--timeout 300] [--record FILE]
//
// --record FILE: one line {"seq":"<attribute seq>"} per message received, written at once (the
// line data-router's test processor writes), so that `bench_load latency` times this client the
// way it times data-router.
//
// Stops by itself after --timeout seconds, or on SIGTERM/SIGINT.
// Against the emulator no credentials are needed: keep google-auth-library from probing the GCE
// metadata server (a link-local address) and point any metadata access at loopback.
process.env.METADATA_SERVER_DETECTION = 'none';
process.env.GCE_METADATA_HOST = '127.0.0.1:9';

const fs = require('fs');
const http = require('http');
const { PubSub } = require('@google-cloud/pubsub');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const project = arg('project', 'bench');
const subName = arg('subscription', 'node-bench');
const port = Number(arg('port', '9101'));
const timeoutS = Number(arg('timeout', '300'));
const recordPath = arg('record', '');

if (!process.env.PUBSUB_EMULATOR_HOST ||
    !/^(127\.|localhost)/.test(process.env.PUBSUB_EMULATOR_HOST)) {
  console.error('pull.js: PUBSUB_EMULATOR_HOST must point at a local emulator');
  process.exit(2);
}

const recordFd = recordPath ? fs.openSync(recordPath, 'a') : -1;
let received = 0;
let acked = 0;
let firstAt = 0;
let lastAt = 0;

const pubsub = new PubSub({ projectId: project });
const sub = pubsub.subscription(subName); // default flow control and ack batching

sub.on('message', (m) => {
  const t = Date.now();
  if (!firstAt) {
    firstAt = t;
  }
  lastAt = t;
  received++;
  if (recordFd >= 0) {
    fs.writeSync(recordFd, `{"seq":${JSON.stringify(String(m.attributes.seq || ''))}}\n`);
  }
  m.ack();
  acked++;
});
sub.on('error', (e) => {
  console.error(`pull.js: subscription error: ${e.message}`);
});

const server = http.createServer((req, res) => {
  if (req.url === '/metrics') {
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
    res.end(`node_pubsub_received_total ${received}\nnode_pubsub_acked_total ${acked}\n`);
    return;
  }
  res.writeHead(404);
  res.end();
});
server.listen(port, '127.0.0.1', () => {
  console.log(`pull.js: draining projects/${project}/subscriptions/${subName}, ` +
              `count on http://127.0.0.1:${port}/metrics`);
});

let stopping = false;
async function stop(code) {
  if (stopping) {
    return;
  }
  stopping = true;
  const span = lastAt > firstAt ? (lastAt - firstAt) / 1000 : 0;
  console.log(`pull.js: received ${received}, acked ${acked}` +
              (span > 0 ? `, ${(received / span).toFixed(0)} msg/s between first and last` : '') +
              `, RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`);
  server.close();
  try {
    await sub.close(); // flushes pending acks
  } catch (e) {
    console.error(`pull.js: close: ${e.message}`);
  }
  process.exit(code);
}

process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));
setTimeout(() => stop(0), timeoutS * 1000).unref();
