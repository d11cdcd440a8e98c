// The dashboard in Debian's chromium, headless, over the DevTools protocol (puppeteer-core),
// against a real elafrosd: sign-in (a wrong token refused), the live service list, the CSRF
// rule for changes, sign-out. Screenshots go to $UI_OUT. Prints one line per check; exits 1 if
// any failed.
//   node dashboard.test.js   (env: UI_URL, UI_TOKEN, UI_SPKI, UI_OUT, ELAFROS, ELAFROS_SOCKET)
"use strict";
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const puppeteer = require("puppeteer-core");

const base = process.env.UI_URL;  // https://localhost:PORT
const out = process.env.UI_OUT;
const cli = (...args) => execFileSync(process.env.ELAFROS, ["--socket", process.env.ELAFROS_SOCKET, ...args],
                                      { encoding: "utf8" });
let failures = 0;
const check = (what, ok, detail = "") => {
  console.log(`${ok ? "ok  " : "FAIL"} - ${what}${ok || !detail ? "" : `: ${detail}`}`);
  if (!ok) failures++;
};

(async () => {
  fs.mkdirSync(out, { recursive: true });
  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    userDataDir: fs.mkdtempSync("/tmp/elafros-ui-chromium-"),
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", `--ignore-certificate-errors-spki-list=${process.env.UI_SPKI}`],
  });
  const consoleErrors = [], failedRequests = [];
  let page;
  try {
    page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 640 });
    // Expected refusals: the first GET /ui/session (nobody signed in), the wrong token's 401, the
    // CSRF-less POST's 403, and the session after sign-out.
    const expected = (url) => url.endsWith("/ui/session") || url.includes("/services");
    page.on("console", (m) => {
      if (m.type() !== "error") return;
      const url = (m.location() && m.location().url) || "";
      if (m.text().startsWith("Failed to load resource") && expected(url)) return;
      consoleErrors.push(`${m.text()} (${url})`);
    });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    page.on("requestfailed", (r) => {
      const why = r.failure() ? r.failure().errorText : "";
      if (why === "net::ERR_ABORTED" && r.url().includes("watch=true")) return;  // the watch, ended on purpose
      failedRequests.push(`${r.url()} ${why}`);
    });

    const started = Date.now();
    await page.goto(`${base}/ui/`, { waitUntil: "domcontentloaded" });
    await page.waitForSelector("#signin:not([hidden])", { timeout: 20000 });
    check("the page loads and asks for a token", true);
    console.log(`     first paint of the sign-in form: ${Date.now() - started} ms`);
    const cookieAttrs = await page.evaluate(() => document.cookie);
    check("no session cookie is readable by the page before sign-in", cookieAttrs === "");
    await page.screenshot({ path: path.join(out, "signin.png") });

    await page.type("#token", "elf_notatoken_000");
    await page.click("#signin-form button[type=submit]");
    await page.waitForFunction(() => document.getElementById("signin-error").textContent.length > 0, { timeout: 20000 });
    const refusal = await page.$eval("#signin-error", (e) => e.textContent);
    check("a wrong token is refused, saying why", /token/.test(refusal), refusal);
    check("...and nothing else shows", await page.$eval("#services", (e) => e.hidden));

    await page.type("#token", process.env.UI_TOKEN);
    await page.click("#signin-form button[type=submit]");
    await page.waitForSelector("#services:not([hidden])", { timeout: 20000 });
    check("the right token signs in", (await page.$eval("#user", (e) => e.textContent)) === "system:admin");
    check("the session cookie is HttpOnly: the page cannot read it", (await page.evaluate(() => document.cookie)) === "");
    const cookies = await page.cookies();
    const session = cookies.find((c) => c.name === "elafros_session");
    check("the session cookie is HttpOnly, Secure and SameSite=Strict",
          session && session.httpOnly && session.secure && session.sameSite === "Strict", JSON.stringify(session));

    // A service the CLI creates appears within a second, from the watch.
    await page.waitForSelector("#live", { timeout: 5000 });
    await page.waitForFunction(() => document.getElementById("live").textContent === "live", { timeout: 20000 });
    cli("service", "create", "fromcli", "--image", "hello", "--no-wait");
    const created = Date.now();
    await page.waitForSelector('tr[data-service="fromcli"]', { timeout: 20000 });
    const shown = Date.now() - created;
    console.log(`     a service created by the CLI showed after ${shown} ms`);
    check("a service created by the CLI shows within 1 s", shown <= 1000, `${shown} ms`);
    await page.waitForFunction(() => {
      const row = document.querySelector('tr[data-service="fromcli"]');
      return row && row.children[3].textContent === "True";
    }, { timeout: 30000 });
    check("...and turns Ready live, with its URL", (await page.$eval('tr[data-service="fromcli"]', (r) => r.children[1].textContent))
      .startsWith("http://fromcli.default.localhost"));
    await page.screenshot({ path: path.join(out, "services.png") });

    // Changes with the cookie need the CSRF token.
    const body = JSON.stringify({ apiVersion: "serving.knative.dev/v1", kind: "Service", metadata: { name: "fromui" },
                                  spec: { template: { spec: { containers: [{ image: "hello" }] } } } });
    const forged = await page.evaluate(async (b) => {
      const r = await fetch("/apis/serving.knative.dev/v1/namespaces/default/services",
                            { method: "POST", body: b, headers: { "Content-Type": "application/json" } });
      return { status: r.status, text: await r.text() };
    }, body);
    check("a POST with the session cookie but no CSRF token is refused 403", forged.status === 403, JSON.stringify(forged));
    check("...saying what it lacks", forged.text.includes("X-CSRF-Token"));
    let listed = cli("service", "list");
    check("...and creates nothing", !listed.includes("fromui"));
    const formLogin = await page.evaluate(async (token) => {
      const r = await fetch("/ui/session", { method: "POST", body: JSON.stringify({ token }),
                                             headers: { "Content-Type": "text/plain" } });
      return r.status;
    }, process.env.UI_TOKEN);
    check("a sign-in that is not application/json (what a form elsewhere could send) is refused",
          formLogin === 400, String(formLogin));
    const allowed = await page.evaluate(async (b) => {
      const s = await (await fetch("/ui/session")).json();
      const r = await fetch("/apis/serving.knative.dev/v1/namespaces/default/services",
                            { method: "POST", body: b, headers: { "Content-Type": "application/json", "X-CSRF-Token": s.csrfToken } });
      return r.status;
    }, body);
    check("with the session's CSRF token the same POST creates the service", allowed === 201, String(allowed));
    await page.waitForSelector('tr[data-service="fromui"]', { timeout: 20000 });

    await page.click("#signout");
    await page.waitForSelector("#signin:not([hidden])", { timeout: 20000 });
    const after = await page.evaluate(async () => (await fetch("/ui/session")).status);
    check("after sign-out the session is gone (401)", after === 401, String(after));

    check("no console errors", consoleErrors.length === 0, consoleErrors.join("; "));
    check("no failed network requests", failedRequests.length === 0, failedRequests.join("; "));
  } catch (e) {
    check("the run completed", false, e.stack || String(e));
    // What the page showed when it stopped, to see why.
    if (page) {
      try {
        console.log("     the page said: " + (await page.evaluate(() => document.body.innerText)).replace(/\s+/g, " "));
        await page.screenshot({ path: path.join(out, "failure.png") });
      } catch (ignored) { /* the browser is gone */ }
    }
    console.log(`     console errors: ${consoleErrors.join("; ") || "none"}; failed requests: ${failedRequests.join("; ") || "none"}`);
  } finally {
    await browser.close();
  }
  process.exit(failures ? 1 : 0);
})();
