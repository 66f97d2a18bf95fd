// Strophe.js against the embedded server.
//
//   node clients/strophe.mjs '{"url": "ws://...", "domain": ..., "users": [...]}'
//
// Strophe.js's Node.js build takes its WebSocket from the "ws" package and
// its DOM (DOMParser, XMLSerializer) from "@xmldom/xmldom", both installed
// beside it from package.json.  Stream management (XEP-0198) is opt-in
// and keeps its resumption state in sessionStorage, which Node.js lacks:
// the memory backend stands in.

import { $iq, $msg, $pres, Strophe } from "strophe.js";

import { log, main, runScenario, waitFor } from "../lib/scenario.mjs";

const { Status } = Strophe;
const STATUS_NAMES = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k]));

function text(element, name) {
  const found = element.getElementsByTagName(name)[0];
  return found ? found.textContent : undefined;
}

function sendIQ(conn, iq) {
  return new Promise((resolve, reject) =>
    conn.sendIQ(
      iq,
      resolve,
      (error) =>
        reject(
          new Error(error ? `iq error: ${Strophe.serialize(error)}` : "iq timed out"),
        ),
      10000,
    ),
  );
}

async function login({ url, domain, username, password, resource, mechanism, debug }) {
  const connection = { presences: [], messages: [], mechanism: null, jid: null };
  const conn = new Strophe.Connection(url, {
    mechanisms:
      mechanism === "PLAIN"
        ? [Strophe.SASLPlain]
        : [Strophe.SASLSHA1, Strophe.SASLSHA256, Strophe.SASLSHA384, Strophe.SASLSHA512],
    enableStreamManagement: true,
    streamManagement: { storage: new Strophe.MemoryStorageBackend() },
  });
  let statuses = [];
  let sawClose = false;
  conn.rawOutput = (data) => {
    if (debug) log(`${username} >> ${data}`);
    const auth = /<auth\b[^>]*\bmechanism=["']([^"']+)["']/.exec(data);
    if (auth) connection.mechanism = auth[1];
  };
  conn.rawInput = (data) => {
    if (debug) log(`${username} << ${data}`);
    if (/^<close\b/.test(data)) sawClose = true;
  };

  // Strophe drops user handlers when a connection ends; add them again on
  // each CONNECTED (a resumed stream included).
  const addHandlers = () => {
    conn.addHandler(
      (presence) => {
        connection.presences.push({
          from: presence.getAttribute("from"),
          type: presence.getAttribute("type") || undefined,
        });
        return true;
      },
      null,
      "presence",
    );
    conn.addHandler(
      (message) => {
        const body = text(message, "body");
        if (body !== undefined) {
          connection.messages.push({
            from: message.getAttribute("from"),
            type: message.getAttribute("type"),
            body,
          });
        }
        return true;
      },
      null,
      "message",
    );
  };

  const connect = () =>
    new Promise((resolve, reject) => {
      conn.connect(`${username}@${domain}/${resource}`, password, (status, condition) => {
        statuses.push(STATUS_NAMES[status]);
        if (status === Status.CONNECTED) {
          addHandlers();
          resolve();
        } else if ([Status.CONNFAIL, Status.AUTHFAIL, Status.ERROR].includes(status)) {
          reject(new Error(`${STATUS_NAMES[status]} ${condition || ""}`));
        } else if (status === Status.DISCONNECTED) {
          reject(new Error(`disconnected (${statuses.join(", ")})`));
        }
      });
    });

  await connect();
  connection.jid = conn.jid;

  Object.assign(connection, {
    async roster() {
      const result = await sendIQ(conn, $iq({ type: "get" }).c("query", { xmlns: Strophe.NS.ROSTER }));
      return Array.from(result.getElementsByTagName("item")).map((item) =>
        item.getAttribute("jid"),
      );
    },
    async sendPresence() {
      conn.send($pres());
    },
    async sendMessage(to, body) {
      conn.send($msg({ to, type: "chat" }).c("body").t(body));
    },
    async ping(to) {
      await sendIQ(conn, $iq({ type: "get", to }).c("ping", { xmlns: "urn:xmpp:ping" }));
    },
    async cutAndResume() {
      if (!conn.isStreamManagementEnabled()) {
        throw new Error("stream management is not enabled (did the server offer urn:xmpp:sm:3?)");
      }
      const before = statuses.length;
      // Cut without a closing handshake, as a lost network would.
      conn._proto.socket.terminate();
      await waitFor(
        () => statuses.slice(before).includes("DISCONNECTED"),
        "Strophe.js to notice the cut",
      );
      await connect();
      if (!conn.hasResumed()) {
        throw new Error("connected again, but with a new session instead of resuming");
      }
    },
    async close() {
      // Strophe.js sends <close/> and closes the WebSocket at once, without
      // waiting for the server's <close/>: watch the socket itself.
      const socket = conn._proto.socket;
      let closeEvent = null;
      socket.on("message", (data) => {
        if (/^<close\b/.test(String(data))) sawClose = true;
      });
      socket.on("close", (code, reason) => {
        closeEvent = { code, reason: String(reason) };
      });
      const before = statuses.length;
      conn.disconnect("interop test done");
      await waitFor(() => statuses.slice(before).includes("DISCONNECTED"), "DISCONNECTED");
      await waitFor(() => closeEvent !== null, "the WebSocket to close");
      return {
        clean: closeEvent.code === 1000 || closeEvent.code === 1005,
        detail: { serverClose: sawClose, websocketClose: closeEvent },
      };
    },
    abort() {
      try {
        conn._proto.socket?.terminate();
      } catch {}
    },
  });
  log(`${username}: connected as ${conn.jid}`);
  return connection;
}

main(() =>
  runScenario(
    { name: "Strophe.js", package: "strophe.js", resume: true, login },
    JSON.parse(process.argv[2]),
  ),
);
