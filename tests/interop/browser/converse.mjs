// Two Converse.js sessions in Chromium against the embedded server.
//
//   node browser/converse.mjs '<JSON config>'
//
// Config: chromium (the browser's path), pageURL (converse.html on the
// plain port), domain, httpsPort (the TLS port, where <domain>:443 is
// mapped), wsURL, discoveredURL (the URL host-meta advertises), users
// [{username, password}] (two), artifacts (a directory for screenshots).
//
// The first user's page finds the WebSocket URL through XEP-0156: Converse
// fetches https://<domain>/.well-known/host-meta, which Chromium's
// --host-resolver-rules sends to the TLS port, and connects to the wss:
// URL it names.  The second user's page is given the ws:// URL.  Each logs
// in, sees the other in the roster and online; the first sends a message
// through the chat box, the second's page shows it and answers, the first's
// page shows the answer; both log out.  Every WebSocket a page opens is
// watched (URL, subprotocol, <auth/> mechanism, close code).  A page error
// fails the run; requests to any host but ours are refused and reported.
//
// Prints one JSON line: {ok, client, version, browser, sessions: [{user,
// transport, steps, socket}], pageErrors, blockedRequests, screenshots}.

import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

import { log, main, packageVersion, withTimeout } from "../lib/scenario.mjs";

const STEP_TIMEOUT = 30000;

// Observe the page's WebSockets without changing what they do.
function watchWebSockets() {
  const Native = window.WebSocket;
  const sockets = (window.__xmppwsSockets = []);
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const entry = { url: String(url), protocol: null, mechanism: null, serverClose: false, close: null };
      sockets.push(entry);
      this.__xmppwsEntry = entry;
      this.addEventListener("open", () => {
        entry.protocol = this.protocol;
      });
      this.addEventListener("message", (event) => {
        if (/^<close\b/.test(String(event.data))) entry.serverClose = true;
      });
      this.addEventListener("close", (event) => {
        entry.close = { code: event.code, wasClean: event.wasClean };
      });
    }

    send(data) {
      const auth = /<auth\b[^>]*\bmechanism=["']([^"']+)["']/.exec(String(data));
      if (auth) this.__xmppwsEntry.mechanism = auth[1];
      return super.send(data);
    }
  };
}

async function step(session, name, fn) {
  const started = performance.now();
  try {
    const detail = await withTimeout(Promise.resolve().then(fn), STEP_TIMEOUT, name);
    session.steps[name] = { ok: true, ms: Math.round(performance.now() - started) };
    if (detail !== undefined) session.steps[name].detail = detail;
    log(`${session.user} ${name}: ok`);
    return true;
  } catch (error) {
    session.steps[name] = {
      ok: false,
      ms: Math.round(performance.now() - started),
      error: String((error && error.message) || error).slice(0, 1000),
    };
    log(`${session.user} ${name}: FAILED`, String((error && error.stack) || error));
    return false;
  }
}

async function run(config) {
  mkdirSync(config.artifacts, { recursive: true });
  const [first, second] = config.users;
  const bare = (user) => `${user.username}@${config.domain}`;
  const result = {
    client: "Converse.js",
    package: "converse.js",
    version: packageVersion("converse.js"),
    driver: `playwright-core ${packageVersion("playwright-core")}`,
    node: process.version,
    sessions: [],
    pageErrors: [],
    blockedRequests: [],
    screenshots: [],
    ok: false,
  };
  const allowedHosts = new Set(["127.0.0.1", config.domain]);

  const browser = await chromium.launch({
    executablePath: config.chromium,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--host-resolver-rules=MAP ${config.domain} 127.0.0.1:${config.httpsPort}`,
      "--ignore-certificate-errors",
    ],
  });
  result.browser = `Chromium ${browser.version()}`;
  log(`launched ${result.browser}`);

  const pages = {};
  try {
    for (const [user, settings, transport] of [
      [first, { discover_connection_methods: true }, "wss"],
      [second, { discover_connection_methods: false, websocket_url: config.wsURL }, "ws"],
    ]) {
      const session = { user: bare(user), transport, framing: "rfc7395", steps: {} };
      result.sessions.push(session);
      const context = await browser.newContext({
        viewport: { width: 1100, height: 700 },
        ignoreHTTPSErrors: true,
      });
      await context.addInitScript(watchWebSockets);
      await context.route("**/*", (route) => {
        const url = new URL(route.request().url());
        if (allowedHosts.has(url.hostname)) return route.continue();
        if (!result.blockedRequests.includes(url.href)) result.blockedRequests.push(url.href);
        return route.abort("blockedbyclient");
      });
      const page = await context.newPage();
      page.on("pageerror", (error) => {
        result.pageErrors.push(`${session.user}: ${error.message}`);
        log(`${session.user} page error: ${error.stack || error.message}`);
      });
      page.on("console", (message) => {
        if (["error", "warning"].includes(message.type())) {
          log(`${session.user} console.${message.type()}: ${message.text().slice(0, 500)}`);
        }
      });
      const query = new URLSearchParams({
        settings: JSON.stringify({
          jid: bare(user),
          password: user.password,
          ...settings,
        }),
      });
      await page.goto(`${config.pageURL}?${query}`);
      pages[session.user] = { page, session, transport };
    }

    const [a, b] = result.sessions.map((s) => pages[s.user]);
    const socketOf = async (p) => {
      const sockets = await p.page.evaluate(() => window.__xmppwsSockets);
      return sockets[sockets.length - 1];
    };

    for (const p of [a, b]) {
      await step(p.session, "login", async () => {
        await p.page.waitForFunction(
          () => window.xmppwsInterop?.api.connection.connected?.() &&
            window.xmppwsInterop.api.connection.get()?.authenticated,
          null,
          { timeout: STEP_TIMEOUT },
        );
        await p.page.locator("converse-roster").waitFor({ timeout: STEP_TIMEOUT });
        const socket = await socketOf(p);
        if (!socket || socket.protocol !== "xmpp") {
          throw new Error(`no xmpp WebSocket: ${JSON.stringify(socket)}`);
        }
        const expected = p === a ? config.discoveredURL : config.wsURL;
        if (socket.url !== expected) throw new Error(`connected to ${socket.url}, not ${expected}`);
        return { url: socket.url, mechanism: socket.mechanism };
      });
    }
    if (!a.session.steps.login?.ok || !b.session.steps.login?.ok) {
      throw new Error("a session did not log in");
    }
    a.session.steps.discovery = {
      ok: true,
      ms: 0,
      detail: `host-meta at https://${config.domain}/.well-known/host-meta named ${config.discoveredURL}`,
    };

    for (const [p, other] of [[a, b], [b, a]]) {
      await step(p.session, "roster", async () => {
        await p.page
          .locator(`converse-roster a.open-chat[data-jid="${other.session.user}"]`)
          .waitFor({ timeout: STEP_TIMEOUT });
      });
    }
    for (const [p, other] of [[a, b], [b, a]]) {
      await step(p.session, "presence", async () => {
        await p.page
          .locator(`converse-roster li[data-status="online"]:has(a.open-chat[data-jid="${other.session.user}"])`)
          .waitFor({ timeout: STEP_TIMEOUT });
      });
    }

    const openChat = async (p, other) => {
      await p.page.locator(`converse-roster a.open-chat[data-jid="${other.session.user}"]`).click();
      const chat = p.page.locator(`converse-chat[jid="${other.session.user}"]`);
      await chat.locator("textarea.chat-textarea").waitFor({ timeout: STEP_TIMEOUT });
      return chat;
    };
    const say = async (chat, text) => {
      const box = chat.locator("textarea.chat-textarea");
      await box.fill(text);
      await box.press("Enter");
    };
    const shot = async (p, name) => {
      const path = join(config.artifacts, name);
      await p.page.screenshot({ path });
      result.screenshots.push(path);
    };

    const hello = `Hello from ${a.session.user} over ${a.transport} (${Date.now()})`;
    const answer = `Hello back from ${b.session.user} over ${b.transport} (${Date.now()})`;
    await step(a.session, "message", async () => {
      const chatB = await openChat(b, a);
      const chatA = await openChat(a, b);
      await say(chatA, hello);
      await chatB.locator(".chat-msg__text", { hasText: hello }).waitFor({ timeout: STEP_TIMEOUT });
      await shot(a, "converse-1-sent.png");
      await shot(b, "converse-2-received.png");
      await say(chatB, answer);
      await chatA.locator(".chat-msg__text", { hasText: answer }).waitFor({ timeout: STEP_TIMEOUT });
      await shot(a, "converse-3-answer.png");
      return { sent: hello, answer };
    });
    b.session.steps.message = { ...a.session.steps.message };

    for (const p of [a, b]) {
      await step(p.session, "close", async () => {
        await p.page.evaluate(() => window.xmppwsInterop.api.user.logout());
        await p.page.waitForFunction(
          () => {
            const sockets = window.__xmppwsSockets;
            return sockets.length && sockets[sockets.length - 1].close;
          },
          null,
          { timeout: STEP_TIMEOUT },
        );
        const socket = await socketOf(p);
        p.session.socket = socket;
        if (!(socket.close.code === 1000 && socket.close.wasClean)) {
          throw new Error(`the WebSocket closed with ${JSON.stringify(socket)}`);
        }
        return socket;
      });
    }
  } catch (error) {
    result.error = String((error && error.message) || error);
    log("run stopped:", String((error && error.stack) || error));
  } finally {
    await browser.close();
  }

  if (result.pageErrors.length) result.error = result.error || "page errors";
  result.ok =
    !result.error &&
    result.sessions.length === 2 &&
    result.sessions.every((s) => Object.values(s.steps).every((step) => step.ok));
  process.stdout.write(JSON.stringify(result) + "\n");
}

main(() => run(JSON.parse(process.argv[2])));
