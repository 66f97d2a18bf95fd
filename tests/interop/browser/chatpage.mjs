// Two users of the served chat page (/chat: Converse.js as xmppws
// configures it) in Chromium, in one group chat.
//
//   node browser/chatpage.mjs '<JSON config>'
//
// Config: chromium (the browser's path), chatURL (the chat page on the
// plain port), domain, mucDomain, room (a room name), users [{username,
// password}] (two), artifacts (a directory for screenshots).
//
// Each page is opened as a visitor would open it and logged in through
// Converse.js's login form with the user name alone (the page names the
// domain).  The first user creates the room through the "Add groupchat"
// dialog (Converse.js then configures it through the room configuration
// form); the second enters it the same way.
// Each sees the other among the occupants, the first sends a message, the
// second's page shows it and answers, the first's page shows the answer;
// both log out.  A page error fails the run; requests to any host but
// ours are refused and reported.
//
// Prints one JSON line: {ok, client, version, browser, sessions: [{user,
// transport, framing, steps}], pageErrors, blockedRequests, screenshots}.

import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

import { log, main, packageVersion, withTimeout } from "../lib/scenario.mjs";

const STEP_TIMEOUT = 30000;

// Note the SASL mechanism of the page's WebSocket, without changing what
// it does.
function watchAuth() {
  const Native = window.WebSocket;
  window.__xmppwsMechanism = null;
  window.WebSocket = class extends Native {
    send(data) {
      const auth = /<auth\b[^>]*\bmechanism=["']([^"']+)["']/.exec(String(data));
      if (auth) window.__xmppwsMechanism = auth[1];
      return super.send(data);
    }
  };
}

// Run one step of a session; on failure keep a screenshot of its page.
async function step(p, name, fn, artifacts, screenshots) {
  const session = p.session;
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
    const path = join(artifacts, `chatpage-failed-${p.user.username}-${name.replace(/ /g, "-")}.png`);
    try {
      await p.page.screenshot({ path });
      screenshots.push(path);
    } catch {}
    return false;
  }
}

async function scenario(config) {
  mkdirSync(config.artifacts, { recursive: true });
  const [first, second] = config.users;
  const roomJID = `${config.room}@${config.mucDomain}`;
  const result = {
    client: "Converse.js chat page",
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
  const chatURL = new URL(config.chatURL);
  const allowedHosts = new Set([chatURL.hostname]);

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
    ],
  });
  result.browser = `Chromium ${browser.version()}`;
  log(`launched ${result.browser}`);

  const shot = async (p, name) => {
    const path = join(config.artifacts, name);
    await p.page.screenshot({ path });
    result.screenshots.push(path);
  };

  const pages = [];
  const run = (p, name, fn) => step(p, name, fn, config.artifacts, result.screenshots);
  try {
    for (const user of [first, second]) {
      const session = {
        user: `${user.username}@${config.domain}`,
        transport: "ws",
        framing: "rfc7395",
        steps: {},
      };
      result.sessions.push(session);
      const context = await browser.newContext({ viewport: { width: 1200, height: 750 } });
      await context.addInitScript(watchAuth);
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
      pages.push({ page, session, user });
    }
    const [a, b] = pages;

    for (const p of pages) {
      await run(p, "login", async () => {
        const response = await p.page.goto(config.chatURL);
        if (!response || response.status() !== 200) {
          throw new Error(`the chat page answered ${response && response.status()}`);
        }
        const jid = p.page.locator("#converse-login-jid");
        await jid.waitFor({ timeout: STEP_TIMEOUT });
        await jid.fill(p.user.username);
        await p.page.locator("#converse-login-password").fill(p.user.password);
        await p.page.locator("form#converse-login [type=submit]").click();
        await p.page.locator("converse-roster").waitFor({ timeout: STEP_TIMEOUT });
        const mechanism = await p.page.evaluate(() => window.__xmppwsMechanism);
        return { page: config.chatURL, mechanism };
      });
    }
    if (!pages.every((p) => p.session.steps.login?.ok)) throw new Error("a session did not log in");

    const room = (p) => p.page.locator(`converse-muc[jid="${roomJID}"]`);
    const occupant = (p, nick) =>
      room(p).locator("span.occupant-nick", { hasText: nick }).first();

    // "Add groupchat" in the rooms list: a room name alone; Converse.js
    // puts it on the page's group chat service, and when the room is new
    // configures it through the room configuration form.
    const addRoom = async (p) => {
      await p.page.locator("converse-rooms-list converse-dropdown button.dropdown-toggle").click();
      await p.page.locator("a.show-add-muc-modal").click();
      const modal = p.page.locator("converse-add-muc-modal");
      await modal.locator("input[name=chatroom]").fill(config.room);
      await modal.locator("input[type=submit][name=join]").click();
      await room(p).locator("textarea.chat-textarea").waitFor({ timeout: STEP_TIMEOUT });
      await occupant(p, p.user.username).waitFor({ timeout: STEP_TIMEOUT });
    };

    await run(a, "create room", async () => {
      await addRoom(a);
      return { room: roomJID };
    });

    await run(b, "join room", async () => {
      await addRoom(b);
      await occupant(b, a.user.username).waitFor({ timeout: STEP_TIMEOUT });
      await occupant(a, b.user.username).waitFor({ timeout: STEP_TIMEOUT });
      return { room: roomJID };
    });

    const say = async (p, text) => {
      const box = room(p).locator("textarea.chat-textarea");
      await box.fill(text);
      await box.press("Enter");
    };
    const hello = `Hello room from ${a.session.user} (${Date.now()})`;
    const answer = `Hello back from ${b.session.user} (${Date.now()})`;
    await run(a, "groupchat", async () => {
      await say(a, hello);
      await room(b).locator(".chat-msg__text", { hasText: hello }).waitFor({ timeout: STEP_TIMEOUT });
      await shot(a, "chatpage-1-sent.png");
      await shot(b, "chatpage-2-received.png");
      await say(b, answer);
      await room(a).locator(".chat-msg__text", { hasText: answer }).waitFor({ timeout: STEP_TIMEOUT });
      await shot(a, "chatpage-3-answer.png");
      return { sent: hello, answer };
    });
    b.session.steps.groupchat = { ...a.session.steps.groupchat };

    for (const p of pages) {
      await run(p, "close", async () => {
        // Log out as a user does: the profile, "Log out", confirm.
        await p.page.locator("a.show-profile").first().click();
        await p.page.locator("converse-profile-modal button.btn-danger").click();
        await p.page.locator("form.confirm button[type=submit]").click();
        await p.page.locator("#converse-login-jid").waitFor({ timeout: STEP_TIMEOUT });
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
    result.sessions.every((s) => Object.values(s.steps).every((st) => st.ok));
  process.stdout.write(JSON.stringify(result) + "\n");
}

main(() => scenario(JSON.parse(process.argv[2])));
