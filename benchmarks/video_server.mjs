// A fast stand-in for the video API, for throughput.py --server node: every
// GET /v1/videos/{id} with the token answers the same in-progress video object as the
// simulator (tracker.simulator) does, so that the server costs the machine as little as it can
// and the clients measured beside each other are what limits their rates.
//
//     node benchmarks/video_server.mjs TOKEN    # prints "simulated video API at URL …"
//
// GET /_simulator/stats counts the requests answered, as the simulator's does.
import http from "node:http";

const token = process.argv[2] ?? "bench-token";
const authorization = `Bearer ${token}`;
let requests = 0;

const server = http.createServer((request, response) => {
  if (request.url === "/_simulator/stats") {
    response.writeHead(200, { "Content-Type": "application/json" });
    response.end(JSON.stringify({ requests, overlaps: 0 }));
    return;
  }
  const id = request.url.startsWith("/v1/videos/") ? request.url.slice(11) : "";
  if (request.method !== "GET" || !id) {
    response.writeHead(404, { "Content-Type": "application/json" });
    response.end('{"error": {"message": "not found", "type": "invalid_request_error"}}');
    return;
  }
  if (request.headers.authorization !== authorization) {
    response.writeHead(401, { "Content-Type": "application/json" });
    response.end('{"error": {"message": "bad token", "type": "invalid_request_error"}}');
    return;
  }
  requests += 1;
  const body = JSON.stringify({
    id,
    object: "video",
    created_at: 1796585826,
    status: "in_progress",
    completed_at: null,
    error: null,
    expires_at: null,
    model: "sora-2",
    progress: 50,
    remixed_from_video_id: null,
    seconds: "4",
    size: "720x1280",
  });
  response.writeHead(200, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(body),
  });
  response.end(body);
});

server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  console.log(`simulated video API at http://127.0.0.1:${port} (token '${token}')`);
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => process.exit(0));
}
