# -*- test-case-name: tests.test_admin -*-
"""
C{xmppws-admin}: manage the embedded server's accounts, also while the
service runs.

    xmppws-admin --data-dir DIR adduser JID PASSWORD
    xmppws-admin --data-dir DIR passwd JID PASSWORD
    xmppws-admin --data-dir DIR deluser JID
    xmppws-admin --data-dir DIR list [DOMAIN]
"""

import os
import sys

from twisted.python import usage
from xmppws.c2s import jid as jids
from xmppws.c2s.storage import AccountExists, NoSuchAccount, Storage

__all__ = ["main", "parseAccountJID"]


def parseAccountJID(text):
    """
    Parse and normalise an account address, C{user@domain}.

    @return: C{(username, domain)}, both prepared as the server prepares
        what clients send (L{xmppws.c2s.jid}), so that the account is the
        one they log in to.
    @raise ValueError: if C{text} is no bare JID with a user part.
    """
    try:
        address = jids.parse(text)
    except jids.JIDMalformed as e:
        raise ValueError("invalid JID %r (%s: %s)" % (text, e.part, e.reason))
    if not address.user or address.resource:
        raise ValueError("an account is user@domain, without resource: %r" % (text,))
    return address.user, address.host


class _AccountCommand(usage.Options):
    def parseArgs(self, jid, password):
        self["jid"] = jid
        self["password"] = password


class _DelCommand(usage.Options):
    def parseArgs(self, jid):
        self["jid"] = jid


class _ListCommand(usage.Options):
    def parseArgs(self, domain=None):
        self["domain"] = domain


class Options(usage.Options):
    """
    Command line of C{xmppws-admin}.
    """

    synopsis = "xmppws-admin [--data-dir DIR] adduser|passwd|deluser|list ..."
    optParameters = [
        ["data-dir", "d", "xmppws-data", "The service's data directory."],
    ]
    subCommands = [
        ["adduser", None, _AccountCommand, "Create an account: JID PASSWORD"],
        ["passwd", None, _AccountCommand, "Change a password: JID PASSWORD"],
        ["deluser", None, _DelCommand, "Delete an account and its data: JID"],
        ["list", None, _ListCommand, "List accounts: [DOMAIN]"],
    ]

    def postOptions(self):
        if self.subCommand is None:
            raise usage.UsageError("name a command: adduser, passwd, deluser or list")


def _forgetData(dataDir, owner):
    """
    Delete an account's message archive and personal data (PEP, vCard,
    private XML), which the service keeps in databases of their own.
    """
    from xmppws.c2s.archive import SCHEMA as ARCHIVE_SCHEMA, ArchiveStore
    from xmppws.c2s.asyncdb import AsyncDatabase, InlineRunner
    from xmppws.c2s.personal import SCHEMA as PERSONAL_SCHEMA, PersonalStore

    for name, schema, forget in (
        ("archive.sqlite", ARCHIVE_SCHEMA, lambda db: ArchiveStore(db, None).delete(owner)),
        ("personal.sqlite", PERSONAL_SCHEMA, lambda db: PersonalStore(db).deleteAccount(owner)),
    ):
        path = os.path.join(dataDir, name)
        if not os.path.exists(path):
            continue
        db = AsyncDatabase(None, path, schema, InlineRunner())
        failures = []
        try:
            forget(db).addErrback(failures.append)
        finally:
            db.close()
        for failure in failures:
            print("xmppws-admin: %s: could not delete the data of %s: %s"
                  % (name, owner, failure.getErrorMessage()), file=sys.stderr)


def run(argv, out=sys.stdout):
    """
    Run one command.

    @return: the exit status.
    """
    options = Options()
    try:
        options.parseOptions(argv)
    except usage.UsageError as e:
        print("xmppws-admin: %s" % (e,), file=sys.stderr)
        print(options.getSynopsis(), file=sys.stderr)
        return 2
    command, args = options.subCommand, options.subOptions
    storage = Storage.inDirectory(options["data-dir"])
    try:
        if command == "list":
            for username, domain in storage.listUsers(args["domain"]):
                print("%s@%s" % (username, domain), file=out)
            return 0
        username, domain = parseAccountJID(args["jid"])
        if command in ("adduser", "passwd") and not args["password"]:
            raise ValueError("the password must not be empty")
        if command == "adduser":
            storage.addUser(username, domain, args["password"])
            print("created %s@%s" % (username, domain), file=out)
        elif command == "passwd":
            storage.setPassword(username, domain, args["password"])
            print("changed the password of %s@%s" % (username, domain), file=out)
        else:
            storage.deleteUser(username, domain)
            _forgetData(options["data-dir"], "%s@%s" % (username, domain))
            print("deleted %s@%s" % (username, domain), file=out)
        return 0
    except ValueError as e:
        print("xmppws-admin: %s" % (e,), file=sys.stderr)
        return 2
    except AccountExists as e:
        print("xmppws-admin: account %s already exists" % (e,), file=sys.stderr)
        return 1
    except NoSuchAccount as e:
        print("xmppws-admin: no account %s" % (e,), file=sys.stderr)
        return 1
    finally:
        storage.close()


def main():
    """
    Entry point of the C{xmppws-admin} script.
    """
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
