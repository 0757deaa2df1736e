// Fallback upstream for bench/proxy.sh (UPSTREAM=node), used only when nginx is
// not available: a node:http server with WORKERS processes (node:cluster, the
// primary hands connections to the workers) that answers GET /api/item with a
// fixed JSON body when the request carries `Authorization: Bearer <TOKEN>`,
// 401 otherwise, and GET /status with the number of requests served
// ("requests: N"), like nginx's stub_status.
//
//   PORT=8080 TOKEN=... BODY_FILE=body.json WORKERS=2 node bench/proxy/upstream.mjs
//
// A single node process is one thread of JavaScript: with 2 workers it can use
// both cores, as nginx does with worker_processes 2.
import cluster from "node:cluster";
import http from "node:http";
import { readFileSync } from "node:fs";

const port = Number(process.env.PORT);
const workers = Number(process.env.WORKERS || 2);

if (cluster.isPrimary) {
  let served = 0;
  const status = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`requests: ${served}\n`);
  });
  // The status server counts what the workers report; it listens on port + 1.
  status.listen(port + 1, "127.0.0.1");
  for (let i = 0; i < workers; i++) {
    cluster.fork().on("message", (n) => {
      served += n;
    });
  }
  const stop = () => {
    for (const w of Object.values(cluster.workers)) w.kill("SIGTERM");
    status.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else {
  const body = readFileSync(process.env.BODY_FILE);
  const want = `Bearer ${process.env.TOKEN}`;
  let pending = 0;
  setInterval(() => {
    if (pending) {
      process.send(pending);
      pending = 0;
    }
  }, 100).unref();
  const server = http.createServer((req, res) => {
    pending++;
    if (req.url !== "/api/item") {
      res.writeHead(404, { "content-length": 0 });
      return res.end();
    }
    if (req.headers.authorization !== want) {
      const refused = '{"error":"unauthorized"}';
      res.writeHead(401, { "content-type": "application/json", "content-length": refused.length });
      return res.end(refused);
    }
    res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 120_000;
  server.listen(port, "127.0.0.1");
}
