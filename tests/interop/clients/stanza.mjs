// Stanza (the "stanza" package) against the embedded server.
//
//   node clients/stanza.mjs '{"url": "ws://...", "domain": ..., "users": [...]}'
//
// Under Node.js, Stanza opens its WebSockets with the "ws" package itself.

import { createHash } from "node:crypto";

import * as XMPP from "stanza";

import { log, main, runScenario, waitFor } from "../lib/scenario.mjs";

function keepOnly(client, wanted) {
  const names = client.sasl.mechanisms.map((m) => m.name);
  for (const name of names) {
    const keep = wanted === "PLAIN" ? name === "PLAIN" : /^SCRAM-SHA-[0-9]+$/.test(name);
    if (!keep) client.sasl.disable(name);
  }
}

async function login({ url, domain, username, password, resource, mechanism, debug }) {
  const connection = { presences: [], messages: [], mucPresences: [], mechanism: null, jid: null };
  const client = XMPP.createClient({
    jid: `${username}@${domain}`,
    password,
    resource,
    server: domain,
    transports: { websocket: url, bosh: false },
    autoReconnect: false,
  });
  keepOnly(client, mechanism);
  let streamEnded = false;
  let disconnects = 0;
  client.on("raw", (direction, data) => {
    if (debug) log(`${username} ${direction === "outgoing" ? ">>" : "<<"} ${data}`);
    if (direction !== "outgoing") return;
    const auth = /<auth\b[^>]*\bmechanism=["']([^"']+)["']/.exec(data);
    if (auth) connection.mechanism = auth[1];
  });
  client.on("stream:error", (error) => log(`${username}: stream error`, error));
  client.on("stream:end", () => {
    streamEnded = true;
  });
  client.on("disconnected", () => {
    disconnects += 1;
  });
  client.on("presence", (presence) => {
    const type = presence.type === "available" ? undefined : presence.type;
    connection.presences.push({ from: presence.from, type });
    if (presence.muc || presence.type === "error") {
      connection.mucPresences.push({
        from: presence.from,
        type,
        codes: (presence.muc?.statusCodes || []).map(String),
      });
    }
  });
  const avatars = [];
  client.on("message", (message) => {
    if (message.body !== undefined && !message.archive) {
      const stanzaId = (message.stanzaIds || []).find((s) => s.by === message.from.split("/")[0]);
      const own = (message.stanzaIds || []).find((s) => s.by === `${username}@${domain}`);
      connection.messages.push({
        from: message.from,
        type: message.type,
        body: message.body,
        stanzaId: stanzaId?.id,
        archiveId: own?.id,
      });
    }
  });
  client.on("avatar", (event) => {
    avatars.push({ jid: event.jid, ids: (event.avatars || []).map((a) => a.id) });
  });

  const started = new Promise((resolve, reject) => {
    client.once("session:started", resolve);
    client.once("auth:failed", () => reject(new Error("SASL authentication failed")));
    client.once("disconnected", () => reject(new Error("disconnected before the session started")));
  });
  client.connect();
  await started;
  connection.jid = client.jid;

  Object.assign(connection, {
    async roster() {
      const roster = await client.getRoster();
      return (roster.items || []).map((item) => item.jid);
    },
    async sendPresence() {
      await client.sendPresence();
    },
    async sendMessage(to, body) {
      client.sendMessage({ to, body, type: "chat" });
    },
    async ping(to) {
      await client.ping(to);
    },
    async cutAndResume() {
      if (!client.sm.started || !client.sm.resumable) {
        throw new Error("stream management is not resumable (did the server offer urn:xmpp:sm:3?)");
      }
      const resumed = new Promise((resolve) => client.once("stream:management:resumed", resolve));
      const before = disconnects;
      // Cut without a closing handshake, as a lost network would.
      client.transport.socket.terminate();
      await waitFor(() => disconnects > before, "Stanza to notice the cut");
      client.connect();
      await resumed;
    },
    async close() {
      const gone = new Promise((resolve) => client.once("disconnected", resolve));
      await client.disconnect();
      await gone;
      return {
        clean: streamEnded,
        detail: streamEnded ? "server answered <close/>" : "no <close/> from the server",
      };
    },
    archive: {
      async page({ with: peer, max, before }) {
        const fin = await client.searchHistory({ with: peer, paging: { max, before } });
        const results = fin.results || [];
        return {
          bodies: results.map((r) => r.item.message.body),
          ids: results.map((r) => r.id),
          first: fin.paging?.first,
          complete: Boolean(fin.complete),
        };
      },
    },
    pep: {
      avatars,
      async announce() {
        client.updateCaps();
        await client.sendPresence({ legacyCapabilities: client.disco.getCaps() });
      },
      async publishAvatar(bytes) {
        const id = createHash("sha1").update(bytes).digest("hex");
        await client.publishAvatar(id, bytes);
        await client.useAvatars([{ id, bytes: bytes.length, type: "image/png" }]);
        return id;
      },
      async fetchAvatar(jid, id) {
        const item = await client.getAvatar(jid, id);
        return Buffer.from(item.content.data).toString("base64");
      },
    },
    vcard: {
      async set(fullName) {
        await client.publishVCard({ fullName });
      },
      async get(jid) {
        const vcard = await client.getVCard(jid);
        return vcard.fullName;
      },
    },
    privateData: {
      async setBookmark(room, name) {
        await client.addBookmark({ jid: room, name, autoJoin: false });
      },
      async bookmarks() {
        return (await client.getBookmarks()).map((b) => String(b.jid));
      },
    },
    muc: {
      async join(room, nick) {
        const own = await client.joinRoom(room, nick);
        return (own.muc?.statusCodes || []).map(String);
      },
      async instant(room) {
        await client.configureRoom(room, { type: "submit", fields: [] });
      },
      async say(room, body) {
        client.sendMessage({ to: room, type: "groupchat", body });
      },
      async kick(room, nick, reason) {
        await client.kick(room, nick, reason);
      },
      async leave(room, nick) {
        await client.leaveRoom(room, nick);
      },
    },
    abort() {
      client.sessionTerminating = true;
      try {
        client.transport?.socket?.terminate();
      } catch {}
    },
  });
  return connection;
}

main(() =>
  runScenario(
    { name: "Stanza", package: "stanza", resume: true, login },
    JSON.parse(process.argv[2]),
  ),
);
