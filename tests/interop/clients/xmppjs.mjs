// xmpp.js (@xmpp/client) against the embedded server.
//
//   node clients/xmppjs.mjs '{"url": "ws://...", "domain": ..., "users": [...]}'
//
// Node.js 20 has no WebSocket global; @xmpp/websocket uses the global, so
// the "ws" package stands in for it (wss: certificates are trusted through
// NODE_EXTRA_CA_CERTS).

import WebSocket from "ws";

import { log, main, runScenario, waitFor, withTimeout } from "../lib/scenario.mjs";

globalThis.WebSocket = WebSocket;

const { client, xml } = await import("@xmpp/client");

const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
const NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin";
const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";

function pickMechanism(offered, wanted) {
  const found =
    wanted === "PLAIN"
      ? offered.find((m) => m === "PLAIN")
      : offered.find((m) => m.startsWith("SCRAM-"));
  if (!found) throw new Error(`${wanted} not among ${offered}`);
  return found;
}

async function login({ url, domain, username, password, resource, mechanism, debug }) {
  const connection = { presences: [], messages: [], mucPresences: [], mechanism: null, jid: null };
  const xmpp = client({
    service: url,
    domain,
    resource,
    credentials: async (authenticate, offered) => {
      await authenticate({ username, password }, pickMechanism(offered, mechanism));
    },
  });
  xmpp.on("error", (error) => log(`${username}: error`, String(error)));
  if (debug) {
    xmpp.on("element", (element) => log(`${username} << ${element}`));
    xmpp.on("send", (element) => log(`${username} >> ${element}`));
  }
  xmpp.on("send", (element) => {
    if (element.is("auth", NS_SASL)) connection.mechanism = element.attrs.mechanism;
  });
  xmpp.on("stanza", (stanza) => {
    if (stanza.is("presence")) {
      connection.presences.push({ from: stanza.attrs.from, type: stanza.attrs.type });
      const x = stanza.getChild("x", NS_MUC_USER);
      if (x || stanza.attrs.type === "error") {
        connection.mucPresences.push({
          from: stanza.attrs.from,
          type: stanza.attrs.type,
          codes: x ? x.getChildren("status").map((s) => s.attrs.code) : [],
        });
      }
    } else if (stanza.is("message") && stanza.getChild("body")) {
      connection.messages.push({
        from: stanza.attrs.from,
        type: stanza.attrs.type,
        body: stanza.getChildText("body"),
        stanzaId: stanza.getChild("stanza-id", "urn:xmpp:sid:0")?.attrs.id,
      });
    }
  });

  const address = await xmpp.start();
  connection.jid = address.toString();

  Object.assign(connection, {
    async roster() {
      const query = await xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
      return query.getChildren("item").map((item) => item.attrs.jid);
    },
    async sendPresence() {
      await xmpp.send(xml("presence"));
    },
    async sendMessage(to, body) {
      await xmpp.send(xml("message", { to, type: "chat" }, xml("body", {}, body)));
    },
    async ping(to) {
      await xmpp.iqCaller.get(xml("ping", { xmlns: "urn:xmpp:ping" }), to);
    },
    async cutAndResume() {
      if (!xmpp.streamManagement.enabled) {
        throw new Error("stream management is not enabled (did the server offer urn:xmpp:sm:3?)");
      }
      const resumed = new Promise((resolve) => xmpp.streamManagement.once("resumed", resolve));
      // Cut without a closing handshake, as a lost network would.
      xmpp.socket.socket.terminate();
      await resumed;
      if (!xmpp.streamManagement.enabled) throw new Error("resumed, but stream management is off");
    },
    async close() {
      const footer = await withTimeout(xmpp.stop(), 10000, "xmpp.stop()");
      const clean = Boolean(footer && footer.name === "close");
      return { clean, detail: footer ? footer.toString() : "no <close/> from the server" };
    },
    muc: {
      async join(room, nick) {
        const occupant = `${room}/${nick}`;
        await xmpp.send(xml("presence", { to: occupant }, xml("x", { xmlns: NS_MUC })));
        const own = await waitFor(
          () =>
            connection.mucPresences.find(
              (p) => p.from === occupant && (p.type === "error" || p.codes.includes("110")),
            ),
          `self-presence from ${occupant}`,
        );
        if (own.type === "error") throw new Error(`could not enter ${room}`);
        return own.codes;
      },
      async instant(room) {
        await xmpp.iqCaller.set(
          xml("query", { xmlns: NS_MUC_OWNER }, xml("x", { xmlns: "jabber:x:data", type: "submit" })),
          room,
        );
      },
      async say(room, body) {
        await xmpp.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, body)));
      },
      async kick(room, nick, reason) {
        await xmpp.iqCaller.set(
          xml("query", { xmlns: NS_MUC_ADMIN },
            xml("item", { nick, role: "none" }, xml("reason", {}, reason))),
          room,
        );
      },
      async leave(room, nick) {
        await xmpp.send(xml("presence", { to: `${room}/${nick}`, type: "unavailable" }));
      },
    },
    abort() {
      xmpp.reconnect.stop();
      try {
        xmpp.socket?.socket?.terminate();
      } catch {}
    },
  });
  return connection;
}

main(() =>
  runScenario(
    { name: "xmpp.js", package: "@xmpp/client", resume: true, login },
    JSON.parse(process.argv[2]),
  ),
);
