"""
Tests for xmppws.
"""
