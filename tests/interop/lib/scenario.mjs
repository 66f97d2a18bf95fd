// The scenario every client library runs against the embedded server.
//
// A client script imports runScenario() and hands it an adapter for its
// library.  The scenario logs two users in (once per SASL mechanism asked
// for), then checks roster, presence, messages both ways, XEP-0199 ping,
// group chat (XEP-0045, where the adapter has it: a room created, entered,
// a message through it with the room's stanza id, a kick), XEP-0198
// resumption after the socket is cut (where the adapter can) and a clean
// close.  It prints one JSON line on stdout:
//
//   {"client": ..., "version": ..., "ok": true|false,
//    "runs": [{"mechanism": "SCRAM", "steps": {"login": {"ok": true,
//              "ms": 12, "detail": ...}, ...}, "error": ...}]}
//
// Logs go to stderr; with "debug": true in the config, the adapters log
// the XML they send and receive too.  The adapter interface:
//
//   adapter.name, adapter.package     for the report (package may be null)
//   adapter.resume                    true when the library does XEP-0198
//   await adapter.login({url, domain, username, password, resource,
//                        mechanism})  -> connection, where mechanism is
//                                        "SCRAM" (the library's best) or
//                                        "PLAIN"
//   connection.jid                    the bound full JID
//   connection.mechanism              the mechanism of the <auth/> sent
//   connection.presences, .messages   [{from, type, body}] received
//   await connection.roster()         -> [bare JID]
//   await connection.sendPresence()
//   await connection.sendMessage(to, body)
//   await connection.ping(to)
//   await connection.cutAndResume()   cut the socket, resolve once resumed
//   await connection.close()          -> {clean: bool, detail}
//   connection.abort()                drop everything (after a failure)
//
// and, for group chat (config.mucDomain), optionally:
//
//   connection.mucPresences           [{from, type, codes}] received from rooms
//   connection.messages entries       also carry stanzaId (the room's XEP-0359 id)
//   await connection.muc.join(room, nick)   resolve on self-presence
//   await connection.muc.instant(room)      accept the default configuration
//   await connection.muc.say(room, body)
//   await connection.muc.kick(room, nick, reason)
//   await connection.muc.leave(room, nick)
//
// and, for history and personal data, optionally:
//
//   connection.messages entries       also carry archiveId (the stanza id
//                                     by the user's own archive, XEP-0359)
//   await connection.archive.page({with, max, before})
//                                     -> {bodies, ids, first, complete}: one
//                                        page of the user's archive
//                                        (XEP-0313 with XEP-0059 paging)
//   await connection.pep.announce()   send presence with XEP-0115 caps
//                                     announcing urn:xmpp:avatar:metadata+notify
//   await connection.pep.publishAvatar(bytes) -> the avatar's id (XEP-0084)
//   connection.pep.avatars            [{jid, ids}] avatar notifications received
//   await connection.pep.fetchAvatar(jid, id) -> the data, base64
//   await connection.vcard.set(fullName), await connection.vcard.get(jid)
//                                     -> FN (XEP-0054)
//   await connection.privateData.setBookmark(room, name)
//   await connection.privateData.bookmarks() -> [room JID]: XEP-0048
//                                        bookmarks in private storage (XEP-0049)

import { readFileSync } from "node:fs";

const STEP_TIMEOUT = 15000;

export function log(...args) {
  process.stderr.write(
    `[${new Date().toISOString()}] ${args
      .map((a) => (typeof a === "string" ? a : JSON.stringify(a)))
      .join(" ")}\n`,
  );
}

// The installed version of a package of tests/interop/package.json (read
// from its directory: not every package exports its package.json).
export function packageVersion(name) {
  try {
    const path = new URL(`../node_modules/${name}/package.json`, import.meta.url);
    return JSON.parse(readFileSync(path, "utf8")).version;
  } catch {
    return null;
  }
}

export function bare(jid) {
  return String(jid || "").split("/")[0];
}

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${ms} ms: ${what}`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

// Resolve with predicate()'s value once it is true, polling; reject after ms.
export async function waitFor(predicate, what, ms = STEP_TIMEOUT) {
  const deadline = Date.now() + ms;
  let value;
  while (!(value = predicate())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return value;
}

function describe(error) {
  if (error && error.message !== undefined) {
    return `${error.name || "Error"}: ${error.message}`.slice(0, 1000);
  }
  return String(error).slice(0, 1000);
}

// Run one step and record it.  Only a failed login stops a run: later
// steps record their own outcome, so the matrix shows each feature.
async function step(run, name, fn, { fatal = false } = {}) {
  const started = performance.now();
  try {
    const detail = await withTimeout(Promise.resolve().then(fn), STEP_TIMEOUT, name);
    run.steps[name] = { ok: true, ms: Math.round(performance.now() - started) };
    if (detail !== undefined) run.steps[name].detail = detail;
    log(`step ${name}: ok`);
  } catch (error) {
    run.steps[name] = {
      ok: false,
      ms: Math.round(performance.now() - started),
      error: describe(error),
    };
    log(`step ${name}: FAILED`, String((error && error.stack) || error));
    if (fatal) throw error;
  }
}

function expectMechanism(connection, wanted) {
  const used = connection.mechanism;
  const ok = wanted === "PLAIN" ? used === "PLAIN" : /^SCRAM-/.test(used || "");
  if (!ok) throw new Error(`asked for ${wanted}, the client sent <auth mechanism='${used}'/>`);
}

async function scenario(adapter, config, mechanism, run, withResume) {
  const [alice, bob] = config.users;
  const aliceBare = `${alice.username}@${config.domain}`;
  const bobBare = `${bob.username}@${config.domain}`;
  const open = [];
  try {
    let a, b;
    await step(run, "login", async () => {
      a = await adapter.login({ ...config, ...alice, resource: "interop-a", mechanism });
      open.push(a);
      b = await adapter.login({ ...config, ...bob, resource: "interop-b", mechanism });
      open.push(b);
      expectMechanism(a, mechanism);
      expectMechanism(b, mechanism);
      if (bare(a.jid) !== aliceBare || bare(b.jid) !== bobBare) {
        throw new Error(`bound ${a.jid} and ${b.jid}`);
      }
      return { mechanism: a.mechanism, jids: [a.jid, b.jid] };
    }, { fatal: true });

    await step(run, "roster", async () => {
      const [ra, rb] = [await a.roster(), await b.roster()];
      if (!ra.includes(bobBare) || !rb.includes(aliceBare)) {
        throw new Error(`rosters: ${aliceBare}: ${ra}; ${bobBare}: ${rb}`);
      }
      return { [aliceBare]: ra, [bobBare]: rb };
    });

    await step(run, "presence", async () => {
      await a.sendPresence();
      await b.sendPresence();
      const available = (conn, from) => () =>
        conn.presences.some((p) => bare(p.from) === from && !p.type);
      await waitFor(available(a, bobBare), `${bobBare}'s presence at ${aliceBare}`);
      await waitFor(available(b, aliceBare), `${aliceBare}'s presence at ${bobBare}`);
    });

    await step(run, "message", async () => {
      const first = `hello bob ${mechanism} ${Date.now()}`;
      const second = `hello alice ${mechanism} ${Date.now()}`;
      await a.sendMessage(bobBare, first);
      await waitFor(
        () => b.messages.some((m) => bare(m.from) === aliceBare && m.body === first),
        "alice's message at bob",
      );
      await b.sendMessage(aliceBare, second);
      await waitFor(
        () => a.messages.some((m) => bare(m.from) === bobBare && m.body === second),
        "bob's message at alice",
      );
    });

    await step(run, "ping", async () => {
      await a.ping(config.domain);
      await b.ping(config.domain);
    });

    if (config.mucDomain && a.muc && b.muc) {
      await step(run, "muc", async () => {
        const room = `interop-${mechanism.toLowerCase()}-${Date.now()}@${config.mucDomain}`;
        const created = await a.muc.join(room, "A");
        if (!created.includes("201") || !created.includes("110")) {
          throw new Error(`creating ${room}: self-presence with status codes ${created}`);
        }
        await a.muc.instant(room);
        const entered = await b.muc.join(room, "B");
        if (!entered.includes("110")) throw new Error(`entering: status codes ${entered}`);
        const body = `to everyone in the room ${Date.now()}`;
        await a.muc.say(room, body);
        const seen = await waitFor(
          () => b.messages.find((m) => m.from === `${room}/A` && m.body === body),
          "the room message at bob",
        );
        if (seen.type !== "groupchat" || !seen.stanzaId) {
          throw new Error(`the room message: ${JSON.stringify(seen)}`);
        }
        await a.muc.kick(room, "B", "interop test");
        await waitFor(
          () =>
            b.mucPresences.some(
              (p) =>
                p.from === `${room}/B` &&
                p.type === "unavailable" &&
                p.codes.includes("307") &&
                p.codes.includes("110"),
            ),
          "bob's kick (307)",
        );
        await a.muc.leave(room, "A");
        return { room, stanzaId: seen.stanzaId };
      });
    }

    if (a.archive && b.archive) {
      await step(run, "archive", async () => {
        const tag = `${mechanism} ${Date.now()}`;
        const sent = [0, 1, 2].map((n) => `archived ${tag} ${n}`);
        for (const body of sent) await a.sendMessage(bobBare, body);
        const live = [];
        for (const body of sent) {
          const seen = await waitFor(
            () => b.messages.find((m) => m.body === body),
            `"${body}" at bob`,
          );
          if (!seen.archiveId) throw new Error(`no stanza id by ${bobBare}: ${JSON.stringify(seen)}`);
          live.push(seen.archiveId);
        }
        // The last page, then the one before it: newest first, as a
        // client scrolling up asks.
        const last = await b.archive.page({ with: aliceBare, max: 2, before: "" });
        const before = await b.archive.page({ with: aliceBare, max: 2, before: last.first });
        const bodies = [...before.bodies, ...last.bodies].slice(-3);
        const ids = [...before.ids, ...last.ids].slice(-3);
        if (JSON.stringify(bodies) !== JSON.stringify(sent)) {
          throw new Error(`archive pages: ${JSON.stringify(bodies)}`);
        }
        if (JSON.stringify(ids) !== JSON.stringify(live)) {
          throw new Error(`archive ids ${JSON.stringify(ids)}, live ${JSON.stringify(live)}`);
        }
        if (last.complete) throw new Error("the last page of several says it is complete");
        return { pages: 2, ids };
      });
    }

    if (a.pep && b.pep) {
      await step(run, "pep", async () => {
        await b.pep.announce();
        const bytes = Buffer.from(`avatar of ${aliceBare} ${mechanism} ${Date.now()}`);
        const id = await a.pep.publishAvatar(bytes);
        await waitFor(
          () => b.pep.avatars.some((n) => bare(n.jid) === aliceBare && n.ids.includes(id)),
          "alice's avatar notification at bob",
        );
        const data = await b.pep.fetchAvatar(aliceBare, id);
        if (data !== bytes.toString("base64")) throw new Error(`avatar data: ${data}`);
        return { id };
      });
    }

    if (a.vcard && b.vcard) {
      await step(run, "vcard", async () => {
        const name = `Alice ${mechanism} ${Date.now()}`;
        await a.vcard.set(name);
        const got = await b.vcard.get(aliceBare);
        if (got !== name) throw new Error(`vCard FN: ${got}`);
      });
    }

    if (a.privateData) {
      await step(run, "private", async () => {
        const room = `bookmarked-${mechanism.toLowerCase()}-${Date.now()}@${config.mucDomain || "conference." + config.domain}`;
        await a.privateData.setBookmark(room, "A bookmark");
        const rooms = await a.privateData.bookmarks();
        if (!rooms.includes(room)) throw new Error(`bookmarks: ${JSON.stringify(rooms)}`);
        return { room };
      });
    }

    if (withResume) {
      await step(run, "resume", async () => {
        const resumed = a.cutAndResume();
        const body = `while you were away ${Date.now()}`;
        // Sent while alice's socket is gone: stream management must hold
        // it for her and deliver it on the resumed stream.
        await b.sendMessage(a.jid, body);
        await resumed;
        await waitFor(
          () => a.messages.some((m) => bare(m.from) === bobBare && m.body === body),
          "the message sent during the cut, after resumption",
        );
        const after = `back again ${Date.now()}`;
        await a.sendMessage(bobBare, after);
        await waitFor(
          () => b.messages.some((m) => bare(m.from) === aliceBare && m.body === after),
          "alice's message after resumption",
        );
      });
    }

    await step(run, "close", async () => {
      const results = [await a.close(), await b.close()];
      open.length = 0;
      const unclean = results.filter((r) => !r.clean);
      if (unclean.length) throw new Error(`unclean close: ${JSON.stringify(unclean)}`);
      return results.map((r) => r.detail);
    });
  } finally {
    for (const connection of open) {
      try {
        connection.abort();
      } catch {}
    }
  }
}

export async function runScenario(adapter, config) {
  const result = {
    client: adapter.name,
    package: adapter.package,
    version: adapter.package ? packageVersion(adapter.package) : null,
    node: process.version,
    runs: [],
    ok: false,
  };
  let resumeDone = false;
  for (const mechanism of config.mechanisms || ["SCRAM", "PLAIN"]) {
    const run = { mechanism, steps: {} };
    result.runs.push(run);
    const withResume = Boolean(adapter.resume && config.resume !== false && !resumeDone);
    resumeDone = resumeDone || withResume;
    log(`run ${adapter.name} ${mechanism} on ${config.url}`);
    try {
      await scenario(adapter, config, mechanism, run, withResume);
    } catch (error) {
      run.error = describe(error);
    }
  }
  result.ok = result.runs.every(
    (run) => !run.error && Object.values(run.steps).every((s) => s.ok),
  );
  process.stdout.write(JSON.stringify(result) + "\n");
}

// Run main() and exit: libraries may leave timers behind, and a script
// that hangs helps nobody.
export function main(fn) {
  process.on("unhandledRejection", (error) => log("unhandled rejection:", String(error)));
  fn().then(
    () => setTimeout(() => process.exit(0), 50),
    (error) => {
      log("fatal:", String((error && error.stack) || error));
      process.stdout.write(JSON.stringify({ ok: false, error: String(error) }) + "\n");
      setTimeout(() => process.exit(1), 50);
    },
  );
}
