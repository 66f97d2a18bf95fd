"""
Tests for the group chat and chat page options of C{twistd xmppws}
(L{xmppws.tap}), on the command line and in the configuration file.
"""

from twisted.python.filepath import FilePath
from twisted.trial import unittest

from tests.test_chatpage import converseDir
from tests.test_tap import OptionsMixin


class GroupChatOptionsTests(OptionsMixin, unittest.TestCase):
    """
    C{--muc-*}: the group chat service run in process.
    """

    def test_default(self):
        """
        By default the service runs at C{conference.} and the first domain,
        with the default quotas, rooms hidden and temporary.
        """
        settings = self.parse("--domain", "example.org", "--domain", "example.net")
        muc = settings.muc
        self.assertEqual(muc.domain, "conference.example.org")
        self.assertEqual(
            (muc.maxRoomsPerUser, muc.maxOccupants, muc.maxHistory, muc.maxMessageSize),
            (100, 500, 100, 20000),
        )
        self.assertFalse(muc.defaultPublic)
        self.assertFalse(muc.defaultPersistent)

    def test_domain(self):
        """
        C{--muc-domain} names the service, prepared as a domain.
        """
        self.assertEqual(self.parse("--muc-domain", "Rooms.Example.ORG").muc.domain, "rooms.example.org")

    def test_off(self):
        """
        C{--muc-domain none} turns the service off.
        """
        self.assertIsNone(self.parse("--muc-domain", "none").muc)

    def test_badDomain(self):
        """
        A domain that is no domain, or is a served domain, is refused.
        """
        self.assertRefused("--muc-domain", "--muc-domain", "not a domain")
        self.assertRefused("--muc-domain", "--muc-domain", "localhost")

    def test_quotas(self):
        """
        The quotas are set from their options, and checked.
        """
        muc = self.parse(
            "--muc-max-rooms-per-user", "3",
            "--muc-max-occupants", "7",
            "--muc-max-history", "9",
            "--muc-max-message-size", "1000",
        ).muc
        self.assertEqual(
            (muc.maxRoomsPerUser, muc.maxOccupants, muc.maxHistory, muc.maxMessageSize),
            (3, 7, 9, 1000),
        )
        self.assertRefused("--muc-max-occupants", "--muc-max-occupants", "0")
        self.assertRefused("--muc-max-history", "--muc-max-history", "-1")
        self.assertRefused("--muc-max-message-size", "--muc-max-message-size", "big")

    def test_roomDefaults(self):
        """
        C{--muc-public-rooms} and C{--muc-persistent-rooms} change what new
        rooms are.
        """
        muc = self.parse("--muc-public-rooms", "--muc-persistent-rooms").muc
        self.assertTrue(muc.defaultPublic)
        self.assertTrue(muc.defaultPersistent)

    def test_configFile(self):
        """
        The options may be given in the configuration file.
        """
        config = FilePath(self.mktemp())
        config.setContent(
            b'muc-domain = "chat.example.org"\n'
            b"muc-max-occupants = 12\n"
            b"muc-public-rooms = true\n"
        )
        muc = self.parse("--config", config.path).muc
        self.assertEqual((muc.domain, muc.maxOccupants, muc.defaultPublic),
                         ("chat.example.org", 12, True))


class ChatOptionsTests(OptionsMixin, unittest.TestCase):
    """
    C{--chat-*}: the web chat page.
    """

    def test_default(self):
        """
        By default the page is at C{/chat}, without Converse.js.
        """
        settings = self.parse()
        self.assertEqual(settings.chatPath, "/chat")
        self.assertIsNone(settings.converseDir)
        self.assertIsNone(settings.converseURL)

    def test_off(self):
        """
        C{--chat-path none} turns the page off.
        """
        self.assertIsNone(self.parse("--chat-path", "none").chatPath)

    def test_path(self):
        """
        The path is checked like the other paths, and may not be the
        WebSocket path or lie under it.
        """
        self.assertEqual(self.parse("--chat-path", "/web/chat/").chatPath, "/web/chat")
        self.assertRefused("--chat-path", "--chat-path", "chat")
        self.assertRefused("--chat-path", "--chat-path", "/xmpp-websocket")
        self.assertRefused("--chat-path", "--chat-path", "/xmpp-websocket/chat")
        self.assertRefused("--chat-path", "--chat-path", "/.well-known/host-meta")

    def test_webSocketUnderChat(self):
        """
        The WebSocket path may lie under the chat path.
        """
        settings = self.parse("--path", "/chat/xmpp-websocket")
        self.assertEqual(settings.chatPath, "/chat")

    def test_directory(self):
        """
        C{--chat-converse-dir} must hold Converse.js's files.
        """
        directory = converseDir(self)
        self.assertEqual(self.parse("--chat-converse-dir", directory.path).converseDir, directory.path)
        self.assertRefused("--chat-converse-dir", "--chat-converse-dir", self.mktemp())

    def test_url(self):
        """
        C{--chat-converse-url} must be an http or https URL, and not given
        with a directory.
        """
        url = "https://cdn.conversejs.org/14.0.0/dist/"
        self.assertEqual(self.parse("--chat-converse-url", url).converseURL, url)
        self.assertRefused("--chat-converse-url", "--chat-converse-url", "ftp://example.org/")
        self.assertRefused(
            "--chat-converse-url",
            "--chat-converse-url", url,
            "--chat-converse-dir", converseDir(self).path,
        )
