// Sends CloudEvents made by the official SDK to a broker, in binary and structured mode, and
// prints each answer's status, for tests/e2e/events_test.sh.
// Usage: node send.js BROKER_URL TYPE [COUNT]
const http = require("node:http");
const { CloudEvent, HTTP } = require("cloudevents");

// fetch cannot set Host; the broker's ingress is a virtual host on the proxy's port.
function post(url, headers, body) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: u.port, path: u.pathname, method: "POST",
                               headers: { ...headers, host: u.host } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function main() {
  const [url, type, count] = [process.argv[2], process.argv[3], Number(process.argv[4] || 1)];
  const out = [];
  for (let i = 0; i < count; i++)
    for (const mode of ["binary", "structured"]) {
      const ev = new CloudEvent({ type, source: "/sdk/sender", datacontenttype: "application/json",
                                  data: { n: i, mode }, myext: "v" + i, subject: "sdk" });
      const m = mode === "binary" ? HTTP.binary(ev) : HTTP.structured(ev);
      out.push({ id: ev.id, mode, status: await post(url, m.headers, m.body) });
    }
  console.log(JSON.stringify(out));
}
main().catch((e) => { console.error(e); process.exit(1); });
