// Test harness: @modelcontextprotocol/server-everything in Streamable HTTP
// mode, as its own `streamableHttp` transport runs it, but bound to
// 127.0.0.1 only. The port is $PORT, or a free one picked here. Prints one
// JSON line, {"url": "http://127.0.0.1:<port>/mcp", "port": <port>}, once it
// listens (everything the server itself logs goes to stderr), and exits
// when its stdin closes, so it cannot outlive the test that started it.
import net from "node:net";

async function freePort() {
  return await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const port = Number(process.env.PORT) || (await freePort());
process.env.PORT = String(port);

// The server logs with console.log; stdout is kept for the one JSON line.
console.log = (...args) => console.error(...args);

// Bind loopback only: the transport calls app.listen(PORT) (all interfaces).
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || typeof args[0] === "string") {
    const callback = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
    this.once("listening", () => {
      process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${port}/mcp`, port }) + "\n");
    });
    return listen.call(this, Number(args[0]), "127.0.0.1", callback);
  }
  return listen.apply(this, args);
};

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();

await import("@modelcontextprotocol/server-everything/dist/transports/streamableHttp.js");
