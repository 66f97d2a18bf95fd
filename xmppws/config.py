# -*- test-case-name: tests.test_tap -*-
"""
The configuration file of C{twistd xmppws}: TOML, one top-level key per
command-line option, named as the option without its dashes::

    domain = ["example.org"]
    listen = ["tcp:5280:interface=127.0.0.1"]
    data-dir = "/var/lib/xmppws"
    max-connections = 5000
    registration = true

Options that may be repeated take a list (or a single string); flags
take C{true} or C{false}; everything else a string or a number.  The
command line overrides the file; a repeated option given on the command
line replaces the file's list.  Relative paths are relative to the
working directory, as on the command line.
"""

import difflib
import tomllib

__all__ = ["ConfigError", "FLAG", "LIST", "VALUE", "loadConfig"]

VALUE = "value"
LIST = "list"
FLAG = "flag"


class ConfigError(Exception):
    """
    The configuration file cannot be used; the message names the file and
    the setting.
    """


def _describe(value):
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return "a %s" % (type(value).__name__,)


def _scalar(path, name, value):
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(
            "%s: %s must be a string or a number, not %s" % (path, name, _describe(value))
        )
    return str(value)


def loadConfig(path, options):
    """
    Read a configuration file.

    @param path: the file.
    @param options: each option's name to its kind: L{VALUE}, L{LIST} or
        L{FLAG}.
    @type options: L{dict}
    @return: the settings the file makes, by option name: a L{str} for a
        value, a L{list} of L{str} for a repeatable option, a L{bool} for
        a flag.
    @rtype: L{dict}
    @raise ConfigError: if the file cannot be read or parsed, or names an
        unknown setting or gives one a value of the wrong type.
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError("cannot read the configuration file %s: %s" % (path, e.strerror))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("%s is not valid TOML: %s" % (path, e))
    settings = {}
    for key, value in data.items():
        name = key.replace("_", "-")
        kind = options.get(name)
        if kind is None:
            close = difflib.get_close_matches(name, list(options), n=1)
            hint = " (did you mean %r?)" % (close[0],) if close else ""
            raise ConfigError("%s: unknown setting %r%s" % (path, key, hint))
        if name in settings:
            raise ConfigError("%s: %r is set twice" % (path, name))
        if kind == FLAG:
            if not isinstance(value, bool):
                raise ConfigError(
                    "%s: %s must be true or false, not %s" % (path, key, _describe(value))
                )
            settings[name] = value
        elif kind == LIST:
            values = value if isinstance(value, list) else [value]
            settings[name] = [_scalar(path, key, item) for item in values]
        else:
            settings[name] = _scalar(path, key, value)
    return settings
