// A draft-ietf-xmpp-websocket-00 client, speaking the way Strophe.js 1.1
// did, against the embedded server.
//
//   node clients/legacy.mjs '{"url": "ws://...", "domain": ..., "users": [...]}'
//
// Like Strophe.js 1.1's websocket.js it
//
//   * opens the stream with an unclosed <stream:stream to=... xmlns=
//     'jabber:client' xmlns:stream=... version='1.0'> message, and sends it
//     again to restart the stream after SASL;
//   * sends stanzas without an xmlns attribute (they inherit the stream's
//     default namespace) and SASL elements with theirs;
//   * parses each message it receives on its own with a DOMParser, after
//     making the server's unclosed header self-closing and declaring the
//     stream prefix on <stream:...> elements that lack it; a message that
//     is not well-formed after that is a failure;
//   * authenticates with SCRAM-SHA-1 or PLAIN, binds, and establishes the
//     RFC 3921 session.
//
// It ends the stream with a </stream:stream> message and, as the draft
// asks, waits for the server's before closing the WebSocket.  It does not
// do stream management (Strophe.js 1.1 had none).

import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";

import { DOMParser } from "@xmldom/xmldom";
import WebSocket from "ws";

import { log, main, runScenario, waitFor } from "../lib/scenario.mjs";

const NS_STREAM = "http://etherx.jabber.org/streams";
const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const FOOTER = "</stream:stream>";

function escape(value) {
  return String(value)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

function parse(data) {
  // What Strophe.js 1.1 did before parsing a message on its own.
  let string = data;
  if (string.search("xmlns:stream") === -1) {
    string = string.replace(/<stream:([^>]*)>/, `<stream:$1 xmlns:stream='${NS_STREAM}'>`);
  }
  string = string.replace(/<stream:stream (.*[^/])>/, "<stream:stream $1/>");
  const errors = [];
  const parser = new DOMParser({
    onError: (level, message) => {
      if (level !== "warning") errors.push(message);
    },
  });
  const doc = parser.parseFromString(string, "text/xml");
  if (errors.length || !doc || !doc.documentElement) {
    throw new Error(`not well-formed: ${JSON.stringify(data)} (${errors.join("; ")})`);
  }
  return doc.documentElement;
}

function childText(element, name) {
  const found = element.getElementsByTagName(name)[0];
  return found ? found.textContent : undefined;
}

function scram(username, password) {
  const nonce = randomBytes(18).toString("base64");
  const first = `n=${username.replace(/=/g, "=3D").replace(/,/g, "=2C")},r=${nonce}`;
  let expectedServerSignature = null;
  return {
    initial: Buffer.from(`n,,${first}`).toString("base64"),
    respond(challenge) {
      const serverFirst = Buffer.from(challenge, "base64").toString();
      const fields = Object.fromEntries(
        serverFirst.split(",").map((part) => [part[0], part.slice(2)]),
      );
      if (!fields.r || !fields.r.startsWith(nonce)) throw new Error("SCRAM: bad server nonce");
      const salted = pbkdf2Sync(password, Buffer.from(fields.s, "base64"), Number(fields.i), 20, "sha1");
      const clientKey = createHmac("sha1", salted).update("Client Key").digest();
      const storedKey = createHash("sha1").update(clientKey).digest();
      const withoutProof = `c=biws,r=${fields.r}`;
      const authMessage = `${first},${serverFirst},${withoutProof}`;
      const signature = createHmac("sha1", storedKey).update(authMessage).digest();
      const proof = Buffer.from(clientKey.map((byte, i) => byte ^ signature[i]));
      const serverKey = createHmac("sha1", salted).update("Server Key").digest();
      expectedServerSignature = createHmac("sha1", serverKey).update(authMessage).digest("base64");
      return Buffer.from(`${withoutProof},p=${proof.toString("base64")}`).toString("base64");
    },
    verify(success) {
      const text = Buffer.from(success || "", "base64").toString();
      if (text !== `v=${expectedServerSignature}`) {
        throw new Error(`SCRAM: the server's signature does not match (${text})`);
      }
    },
  };
}

class LegacyConnection {
  constructor(url, domain, debug, name) {
    this.url = url;
    this.domain = domain;
    this.debug = debug;
    this.name = name;
    this.inbox = [];
    this.presences = [];
    this.messages = [];
    this.headers = [];
    this.footerReceived = false;
    this.closeEvent = null;
    this.failure = null;
    this.nextId = 0;
  }

  open() {
    return new Promise((resolve, reject) => {
      this.socket = new WebSocket(this.url, "xmpp");
      this.socket.on("open", () => {
        if (this.socket.protocol !== "xmpp") {
          reject(new Error(`server chose subprotocol ${JSON.stringify(this.socket.protocol)}`));
          return;
        }
        this.sendHeader();
        resolve();
      });
      this.socket.on("error", (error) => {
        this.failure = error;
        reject(error);
      });
      this.socket.on("message", (data, isBinary) => this.received(String(data), isBinary));
      this.socket.on("close", (code, reason) => {
        this.closeEvent = { code, reason: String(reason) };
      });
    });
  }

  sendRaw(data) {
    if (this.debug) log(`${this.name} >> ${data}`);
    this.socket.send(data);
  }

  sendHeader() {
    // Strophe.serialize() wrote double quotes, in this order; then the
    // trailing "/>" was cut to leave the element open.
    this.sendRaw(
      `<stream:stream to="${escape(this.domain)}" xmlns="jabber:client" ` +
        `xmlns:stream="${NS_STREAM}" version="1.0">`,
    );
  }

  received(data, isBinary) {
    if (this.debug) log(`${this.name} << ${data}`);
    try {
      if (isBinary) throw new Error("binary message from the server");
      if (data === FOOTER) {
        this.footerReceived = true;
        return;
      }
      const element = parse(data);
      if (element.nodeName === "stream:stream") {
        if (element.getAttribute("xmlns") !== "jabber:client") {
          throw new Error(`stream header without xmlns='jabber:client': ${data}`);
        }
        this.headers.push(element);
      } else if (element.nodeName === "stream:error") {
        throw new Error(`stream error: ${data}`);
      } else if (element.nodeName === "presence") {
        this.presences.push({
          from: element.getAttribute("from"),
          type: element.getAttribute("type") || undefined,
        });
      } else if (element.nodeName === "message") {
        const body = childText(element, "body");
        if (body !== undefined) {
          this.messages.push({ from: element.getAttribute("from"), type: element.getAttribute("type"), body });
        }
      } else {
        this.inbox.push(element);
      }
    } catch (error) {
      this.failure = error;
      log(`${this.name}: ${error.message}`);
    }
  }

  async take(predicate, what) {
    let found;
    await waitFor(() => {
      if (this.failure) throw this.failure;
      const index = this.inbox.findIndex(predicate);
      if (index < 0) return false;
      [found] = this.inbox.splice(index, 1);
      return true;
    }, what);
    return found;
  }

  // The server's header, then its features, after each header we send.
  async features() {
    await waitFor(() => {
      if (this.failure) throw this.failure;
      return this.headers.length > 0;
    }, "the server's stream header");
    this.headers.length = 0;
    return this.take((e) => e.nodeName === "stream:features", "stream features");
  }

  async iq(type, payload, to) {
    const id = `legacy_${++this.nextId}`;
    this.sendRaw(`<iq type="${type}" id="${id}"${to ? ` to="${escape(to)}"` : ""}>${payload}</iq>`);
    const reply = await this.take(
      (e) => e.nodeName === "iq" && e.getAttribute("id") === id,
      `the answer to iq ${id}`,
    );
    if (reply.getAttribute("type") !== "result") {
      throw new Error(`iq ${id} failed: ${reply.toString()}`);
    }
    return reply;
  }
}

async function login({ url, domain, username, password, resource, mechanism, debug }) {
  const conn = new LegacyConnection(url, domain, debug, username);
  const connection = {
    presences: conn.presences,
    messages: conn.messages,
    mechanism: null,
    jid: null,
  };
  await conn.open();
  const features = await conn.features();
  const offered = Array.from(features.getElementsByTagName("mechanism")).map((m) => m.textContent);
  const name = mechanism === "PLAIN" ? "PLAIN" : "SCRAM-SHA-1";
  if (!offered.includes(name)) throw new Error(`${name} not offered: ${offered}`);
  connection.mechanism = name;

  let verify = () => {};
  if (name === "PLAIN") {
    const payload = Buffer.from(`\0${username}\0${password}`).toString("base64");
    conn.sendRaw(`<auth xmlns="${NS_SASL}" mechanism="PLAIN">${payload}</auth>`);
  } else {
    const client = scram(username, password);
    conn.sendRaw(`<auth xmlns="${NS_SASL}" mechanism="SCRAM-SHA-1">${client.initial}</auth>`);
    const challenge = await conn.take((e) => e.nodeName !== "stream:features", "a SASL challenge");
    if (challenge.nodeName !== "challenge") throw new Error(`SASL: ${challenge.toString()}`);
    conn.sendRaw(`<response xmlns="${NS_SASL}">${client.respond(challenge.textContent)}</response>`);
    verify = client.verify;
  }
  const outcome = await conn.take((e) => ["success", "failure"].includes(e.nodeName), "SASL outcome");
  if (outcome.nodeName !== "success") throw new Error(`SASL failed: ${outcome.toString()}`);
  verify(outcome.textContent);

  conn.sendHeader();
  const after = await conn.features();
  if (!after.getElementsByTagName("bind").length) throw new Error("no bind feature after SASL");
  const bound = await conn.iq(
    "set",
    `<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>${escape(resource)}</resource></bind>`,
  );
  connection.jid = childText(bound, "jid");
  await conn.iq("set", `<session xmlns="urn:ietf:params:xml:ns:xmpp-session"/>`);

  Object.assign(connection, {
    async roster() {
      const result = await conn.iq("get", `<query xmlns="jabber:iq:roster"/>`);
      return Array.from(result.getElementsByTagName("item")).map((i) => i.getAttribute("jid"));
    },
    async sendPresence() {
      conn.sendRaw("<presence/>");
    },
    async sendMessage(to, body) {
      conn.sendRaw(`<message to="${escape(to)}" type="chat"><body>${escape(body)}</body></message>`);
    },
    async ping(to) {
      await conn.iq("get", `<ping xmlns="urn:xmpp:ping"/>`, to);
    },
    async close() {
      conn.sendRaw(FOOTER);
      await waitFor(() => conn.footerReceived || conn.closeEvent, "the server's </stream:stream>");
      if (!conn.closeEvent) conn.socket.close(1000);
      await waitFor(() => conn.closeEvent, "the WebSocket to close");
      const clean = conn.footerReceived && conn.closeEvent.code === 1000 && !conn.failure;
      return {
        clean,
        detail: {
          serverFooter: conn.footerReceived,
          websocketClose: conn.closeEvent,
          failure: conn.failure ? String(conn.failure.message) : null,
        },
      };
    },
    abort() {
      conn.socket?.terminate();
    },
  });
  return connection;
}

main(() =>
  runScenario(
    { name: "Strophe.js 1.1 style", package: null, resume: false, login },
    JSON.parse(process.argv[2]),
  ),
);
