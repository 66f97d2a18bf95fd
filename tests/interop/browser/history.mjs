// History and personal data on the served chat page (/chat: Converse.js
// as xmppws configures it), two users in Chromium.
//
//   node browser/history.mjs '<JSON config>'
//
// Config: chromium, chatURL, domain, mucDomain, room, users [{username,
// password}] (two), artifacts.
//
// Each user logs in through the login form (a trusted device: Converse.js
// then sets up OMEMO, publishing its device list and bundle through PEP)
// and sets an avatar in the profile dialog (a vCard); each sees the
// other's avatar in the roster.  They chat one to one, then open a room
// through a "#converse/room?jid=" link (Converse.js waits for its
// bookmarks, kept in PEP, before it follows one) and talk there;
// Converse.js bookmarks the room with autojoin (XEP-0402).  The first
// user then empties the browser's storage (local, session, IndexedDB)
// and reloads: after logging in again, the room is joined from the
// bookmark and both conversations show what was said before, from the
// message archives (XEP-0313) -- nothing is left in the browser to show
// it from.  The other's avatar shows again.
//
// Page errors fail the run, and so do console errors about PEP, pubsub,
// OMEMO, bookmarks, vCards or the archive; other console errors are
// reported.  Requests to any host but ours are refused and reported.
//
// Prints one JSON line: {ok, client, version, browser, sessions: [{user,
// transport, framing, steps}], pageErrors, consoleErrors, blockedRequests,
// screenshots}.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "node:zlib";

import { chromium } from "playwright-core";

import { log, main, packageVersion, withTimeout } from "../lib/scenario.mjs";

const STEP_TIMEOUT = 30000;
const RELEVANT = /pubsub|\bpep\b|omemo|bookmark|vcard|avatar|archive|\bmam\b|precondition|publish/i;

// A small PNG of one colour, for an avatar.
function png(size, [r, g, b]) {
  const table = new Int32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c;
  });
  const crc = (buffer) => {
    let c = -1;
    for (const byte of buffer) c = table[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ -1) >>> 0;
  };
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([length, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(size * 3).map((_, i) => [r, g, b][i % 3])]);
  const pixels = Buffer.concat(Array.from({ length: size }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(pixels)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// Runs in the page before its scripts: when the page defines the global
// converse, add a plugin (allowed through whitelisted_plugins) that
// notes when OMEMO is set up, so that the test does not race
// Converse.js's own publishing of its keys.
function watchConverse() {
  let real;
  Object.defineProperty(window, "converse", {
    configurable: true,
    get() {
      return real;
    },
    set(value) {
      real = value;
      // The bundle may assign it more than once.
      if (!value || value.__xmppwsWatched) return;
      value.__xmppwsWatched = true;
      const initialize = value.initialize.bind(value);
      value.plugins.add("xmppws-test-watch", {
        initialize() {
          this._converse.api.listen.on("OMEMOInitialized", () => {
            window.__xmppwsOMEMO = true;
          });
        },
      });
      value.initialize = (settings) =>
        initialize({
          ...settings,
          whitelisted_plugins: [...(settings.whitelisted_plugins || []), "xmppws-test-watch"],
        });
    },
  });
}

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
    const path = join(artifacts, `history-failed-${p.user.username}-${name.replace(/ /g, "-")}.png`);
    try {
      await p.page.screenshot({ path });
      screenshots.push(path);
    } catch {}
    return false;
  }
}

async function scenario(config) {
  mkdirSync(config.artifacts, { recursive: true });
  const roomJID = `${config.room}@${config.mucDomain}`;
  const result = {
    client: "Converse.js chat page",
    package: "converse.js",
    version: packageVersion("converse.js"),
    driver: `playwright-core ${packageVersion("playwright-core")}`,
    node: process.version,
    sessions: [],
    pageErrors: [],
    consoleErrors: [],
    otherConsoleErrors: [],
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

  const pages = [];
  const run = (p, name, fn) => step(p, name, fn, config.artifacts, result.screenshots);
  const colours = [
    [200, 40, 40],
    [40, 40, 200],
  ];
  try {
    for (const [index, user] of config.users.entries()) {
      const session = {
        user: `${user.username}@${config.domain}`,
        transport: "ws",
        framing: "rfc7395",
        steps: {},
      };
      result.sessions.push(session);
      const context = await browser.newContext({ viewport: { width: 1200, height: 750 } });
      await context.addInitScript(watchConverse);
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
        if (message.type() !== "error") return;
        const text = `${session.user}: ${message.text().slice(0, 500)}`;
        (RELEVANT.test(message.text()) ? result.consoleErrors : result.otherConsoleErrors).push(text);
        log(`console.error ${text}`);
      });
      pages.push({ page, session, user, avatar: png(32, colours[index]) });
    }
    const [a, b] = pages;
    const jidOf = (p) => `${p.user.username}@${config.domain}`;

    const login = async (p) => {
      const response = await p.page.goto(config.chatURL);
      if (!response || response.status() !== 200) {
        throw new Error(`the chat page answered ${response && response.status()}`);
      }
      const jid = p.page.locator("#converse-login-jid");
      await jid.waitFor({ timeout: STEP_TIMEOUT });
      await jid.fill(p.user.username);
      await p.page.locator("#converse-login-password").fill(p.user.password);
      const trusted = p.page.locator("#converse-login-trusted");
      if ((await trusted.count()) && !(await trusted.isChecked())) await trusted.check();
      await p.page.locator("form#converse-login [type=submit]").click();
      await p.page.locator("converse-roster").waitFor({ timeout: STEP_TIMEOUT });
      // OMEMO published its device list and bundle through PEP.
      await p.page.waitForFunction(() => window.__xmppwsOMEMO === true, null, {
        timeout: STEP_TIMEOUT,
      });
    };

    for (const p of pages) {
      await run(p, "login", () => login(p));
    }
    if (!pages.every((p) => p.session.steps.login?.ok)) throw new Error("a session did not log in");

    // The avatar a page shows for a roster contact, and its own.
    const contactAvatar = (p, other) =>
      p.page.locator(`a.open-chat[data-jid="${jidOf(other)}"] converse-avatar image`).first();
    const ownAvatar = (p) => p.page.locator("converse-user-profile converse-avatar image").first();

    for (const p of pages) {
      await run(p, "set avatar", async () => {
        await p.page.locator("a.show-profile").first().click();
        const modal = p.page.locator("converse-profile-modal");
        await modal.locator("input[name=avatar_image]").setInputFiles({
          name: "avatar.png",
          mimeType: "image/png",
          buffer: p.avatar,
        });
        await modal.locator("button.save-form").click();
        await ownAvatar(p).waitFor({ state: "attached", timeout: STEP_TIMEOUT });
        // The dialog closes once the vCard is stored.
        await modal.locator("button.save-form").waitFor({ state: "hidden", timeout: STEP_TIMEOUT });
      });
    }

    const seeAvatar = async (p, other) => {
      const expected = await ownAvatar(other).getAttribute("href");
      const shown = contactAvatar(p, other);
      await shown.waitFor({ state: "attached", timeout: STEP_TIMEOUT });
      const deadline = Date.now() + STEP_TIMEOUT;
      while ((await shown.getAttribute("href")) !== expected) {
        if (Date.now() > deadline) throw new Error(`${jidOf(other)}'s avatar is not the one set`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return { bytes: expected.length };
    };

    for (const [p, other] of [
      [a, b],
      [b, a],
    ]) {
      await run(p, "see avatars", () => seeAvatar(p, other));
    }

    const chat = (p, other) => p.page.locator(`converse-chat[jid="${jidOf(other)}"]`);
    const openChat = async (p, other) => {
      await p.page.locator(`a.open-chat[data-jid="${jidOf(other)}"]`).first().click();
      await chat(p, other).locator("textarea.chat-textarea").waitFor({ timeout: STEP_TIMEOUT });
    };
    const say = async (box, text) => {
      const area = box.locator("textarea.chat-textarea");
      await area.fill(text);
      await area.press("Enter");
    };
    const shows = (box, text) =>
      box.locator(".chat-msg__text", { hasText: text }).first().waitFor({ state: "attached", timeout: STEP_TIMEOUT });

    const stamp = Date.now();
    const hello = `Hello ${jidOf(b)} (${stamp})`;
    const answer = `Hello back ${jidOf(a)} (${stamp})`;
    await run(a, "chat", async () => {
      await openChat(a, b);
      await say(chat(a, b), hello);
      await openChat(b, a);
      await shows(chat(b, a), hello);
      await say(chat(b, a), answer);
      await shows(chat(a, b), answer);
    });

    const room = (p) => p.page.locator(`converse-muc[jid="${roomJID}"]`);
    const follow = async (p) => {
      // A link as one is shared: the page's URL with the room in its hash.
      await p.page.evaluate((jid) => {
        window.location.hash = `converse/room?jid=${jid}`;
      }, roomJID);
      await room(p).locator("textarea.chat-textarea").waitFor({ timeout: STEP_TIMEOUT });
    };
    const inRoom = `Hello room (${stamp})`;
    await run(a, "room link", async () => {
      await follow(a);
      await follow(b);
      await room(a)
        .locator("span.occupant-nick", { hasText: b.user.username })
        .first()
        .waitFor({ timeout: STEP_TIMEOUT });
      await say(room(a), inRoom);
      await shows(room(b), inRoom);
      return { room: roomJID };
    });

    await run(a, "reload", async () => {
      // Away from Converse.js (which ends its session), to a page of the
      // same origin, where the browser's storage is emptied.
      await a.page.goto(new URL("/", config.chatURL).href);
      await a.page.evaluate(async () => {
        localStorage.clear();
        sessionStorage.clear();
        for (const db of await indexedDB.databases()) {
          await new Promise((resolve) => {
            const request = indexedDB.deleteDatabase(db.name);
            request.onsuccess = request.onerror = request.onblocked = resolve;
          });
        }
      });
      await a.page.context().clearCookies();
      await login(a);
    });

    await run(a, "room history", async () => {
      // Joined again from the bookmark, its history from the room's archive.
      const link = a.page.locator(`a.open-room[data-room-jid="${roomJID}"]`).first();
      await link.waitFor({ timeout: STEP_TIMEOUT });
      await link.click();
      await room(a).locator("textarea.chat-textarea").waitFor({ timeout: STEP_TIMEOUT });
      await shows(room(a), inRoom);
    });

    await run(a, "chat history", async () => {
      await openChat(a, b);
      await shows(chat(a, b), hello);
      await shows(chat(a, b), answer);
    });

    await run(a, "avatars again", () => seeAvatar(a, b));

    for (const p of pages) {
      const path = join(config.artifacts, `history-${p.user.username}.png`);
      await p.page.screenshot({ path });
      result.screenshots.push(path);
    }
  } catch (error) {
    result.error = String((error && error.message) || error);
    log("run stopped:", String((error && error.stack) || error));
  } finally {
    await browser.close();
  }

  if (result.pageErrors.length) result.error = result.error || "page errors";
  if (result.consoleErrors.length) result.error = result.error || "console errors";
  result.ok =
    !result.error &&
    result.sessions.length === 2 &&
    result.sessions.every((s) => Object.values(s.steps).every((st) => st.ok));
  process.stdout.write(JSON.stringify(result) + "\n");
}

main(() => scenario(JSON.parse(process.argv[2])));
