// A CloudEvents subscriber built on the official SDK, for tests/e2e/events_test.sh. It parses
// every request with HTTP.toEvent and validate(), records it as a JSON line, and answers by path:
//   /ok            202
//   /reply         200 with an SDK-made event of type com.example.reply
//   /loop          200 with an event of the same type (a reply loop)
//   /fail?n=N&code=C  C (default 503) for the first N deliveries of each event id, then 202
//   /bad           400 "bad input"
//   /notce         200 with a body that is not a CloudEvent
//   /dls           202 (a dead-letter sink)
//   /slow          202 after a second
// Usage: node subscriber.js PORT LOGFILE
const http = require("node:http");
const fs = require("node:fs");
const { CloudEvent, HTTP } = require("cloudevents");

const [port, log] = [Number(process.argv[2]), process.argv[3]];
const seen = new Map();

http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const url = new URL(req.url, "http://x");
    const record = { path: url.pathname, time: Date.now(), prefer: req.headers.prefer || "",
                     contentType: req.headers["content-type"] || "" };
    let event;
    try {
      event = HTTP.toEvent({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      event.validate();
      record.event = JSON.parse(JSON.stringify(event));
      record.valid = true;
    } catch (e) {
      record.valid = false;
      record.error = String(e && e.message ? e.message : e);
    }
    fs.appendFileSync(log, JSON.stringify(record) + "\n");
    const id = event ? event.id : "";
    switch (url.pathname) {
      case "/reply": {
        const reply = new CloudEvent({ type: "com.example.reply", source: "/subscriber",
                                       datacontenttype: "application/json",
                                       data: { inReplyTo: id, ok: true }, replyext: "yes" });
        const m = HTTP.binary(reply);
        res.writeHead(200, m.headers);
        return res.end(m.body);
      }
      case "/loop": {
        const m = HTTP.binary(new CloudEvent({ type: event ? event.type : "loop", source: "/loop", data: {} }));
        res.writeHead(200, m.headers);
        return res.end(m.body);
      }
      case "/fail": {
        const n = Number(url.searchParams.get("n") || 1);
        const count = (seen.get(id) || 0) + 1;
        seen.set(id, count);
        res.writeHead(count <= n ? Number(url.searchParams.get("code") || 503) : 202);
        return res.end();
      }
      case "/slow":
        return setTimeout(() => { res.writeHead(202); res.end(); }, 1000);
      case "/bad":
        res.writeHead(400, { "content-type": "text/plain" });
        return res.end("bad input");
      case "/notce":
        res.writeHead(200, { "content-type": "text/plain" });
        return res.end("hello, not an event");
      default:
        res.writeHead(202);
        return res.end();
    }
  });
}).listen(port, "127.0.0.1", () => fs.appendFileSync(log, JSON.stringify({ listening: port }) + "\n"));
