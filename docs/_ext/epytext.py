"""
Read the epytext docstrings of xmppws (and Twisted's house style) with
Sphinx autodoc: fields (C{@param}, C{@type}, C{@return}, C{@rtype},
C{@raise}, C{@ivar}) become reStructuredText field lists and inline
markup (C{L{...}}, C{C{...}}, C{I{...}}, C{B{...}}, C{U{...}}) becomes
cross-references, literals and emphasis.

Nothing is fetched: references to other projects are listed in
C{nitpick_ignore_regex} in C{conf.py}.
"""

import importlib
import re
import sys

_FIELDS = {
    "param": "param",
    "type": "type",
    "return": "returns",
    "returns": "returns",
    "rtype": "rtype",
    "raise": "raises",
    "raises": "raises",
    "ivar": "ivar",
    "cvar": "cvar",
    "var": "var",
    "keyword": "keyword",
}
_FIELD = re.compile(r"^(\s*)@(\w+)(\s+[^:]*)?:(.*)$")
_PLAIN_FIELDS = {"see": "See", "note": "Note", "since": "Since", "author": "Author"}


def _resolve(target, context):
    """
    The fully qualified name of a reference target, as pydoctor finds it:
    a full dotted name, or a name imported into (or defined in) the module
    of the documented object.

    @return: C{(qualifiedName, public)}, or L{None} if it does not resolve.
    """
    head, _, rest = target.partition(".")
    module = sys.modules.get(context)
    value = getattr(module, head, None) if module is not None else None
    if value is None:
        try:
            value = importlib.import_module(head)
        except ImportError:
            return None
    qualified = getattr(value, "__name__", None)
    if not hasattr(value, "__file__"):
        owner = getattr(value, "__module__", None)
        qualname = getattr(value, "__qualname__", None) or qualified
        if owner is None or qualname is None:
            return None
        qualified = "%s.%s" % (owner, qualname)
    for part in rest.split(".") if rest else ():
        if hasattr(value, "__file__"):
            try:
                value = importlib.import_module(qualified + "." + part)
            except ImportError:
                value = getattr(value, part, None)
        else:
            value = getattr(value, part, None)
        if value is None:
            return None
        qualified = qualified + "." + part
    public = not any(piece.startswith("_") for piece in qualified.split("."))
    return qualified, public


def _inline(text, context=None):
    """
    Convert epytext inline markup, innermost first.
    """
    out = []
    i = 0
    while i < len(text):
        if text[i] in "LCIBUM" and text[i + 1 : i + 2] == "{":
            depth = 1
            j = i + 2
            while j < len(text) and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                out.append(text[i:])
                break
            body = text[i + 2 : j - 1]
            out.append(_markup(text[i], body, context))
            if j < len(text) and (text[j].isalnum() or text[j] in "(_"):
                # reStructuredText markup must end before such a character.
                out.append("\\ ")
            i = j
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _literal(text):
    text = text.replace("`", "'").strip()
    return "``%s``" % (text,) if text else text


def _markup(kind, body, context=None):
    if kind == "C":
        return _literal(body)
    if kind == "L":
        match = re.match(r"^(.*?)\s*<(.+)>$", body, re.S)
        label, target = (match.group(1), match.group(2).strip()) if match else (None, body.strip())
        resolved = _resolve(target, context) if context else None
        if resolved is None:
            if target.split(".")[0] in _EXTERNAL or "." not in target and target in _BUILTINS:
                resolved = (target, True)
            else:
                # Attributes, parameters, private names: plain text, as
                # pydoctor shows what it cannot link.
                return _literal(label or target)
        qualified, public = resolved
        if not public and qualified.startswith("xmppws"):
            return _literal(label or target)
        if label:
            return ":py:obj:`%s <%s>`" % (label.replace("`", "'"), qualified)
        return ":py:obj:`%s <%s>`" % (target, qualified)
    inner = _inline(body, context)
    if kind == "I":
        return "*%s*" % (inner,)
    if kind == "B":
        return "**%s**" % (inner,)
    if kind == "U":
        return inner
    return inner


_EXTERNAL = ("twisted", "autobahn", "zope", "txaio", "tx_xmpp", "wokkel")
_BUILTINS = ("bytes", "str", "int", "float", "bool", "list", "dict", "tuple", "set", "None")


_OPEN_FIELD = re.compile(r"^\s*@\w+\s+[^:]*,\s*$")


def _joinFieldNames(lines):
    """
    Join a field whose list of names goes on over several lines
    (C{@ivar a, b,} then C{c: text}) into one line.
    """
    joined = []
    for line in lines:
        if joined and _OPEN_FIELD.match(joined[-1]):
            joined[-1] = joined[-1].rstrip() + " " + line.strip()
        else:
            joined.append(line)
    return joined


def _convert(lines, context=None):
    converted = []
    for line in _joinFieldNames(lines):
        match = _FIELD.match(line)
        if match:
            indent, name, argument, rest = match.groups()
            argument = (argument or "").strip()
            if name in _FIELDS:
                field = _FIELDS[name]
                names = [n.strip() for n in argument.split(",")] if argument else [""]
                for argument in names:
                    head = ":%s %s:" % (field, argument) if argument else ":%s:" % (field,)
                    converted.append(indent + head + _inline(rest, context))
                continue
            if name in _PLAIN_FIELDS:
                converted.append(
                    indent + "*%s:*%s" % (_PLAIN_FIELDS[name], _inline(rest, context))
                )
                continue
        converted.append(_inline(line, context))
    return converted


def _indent(line):
    return len(line) - len(line.lstrip())


def _literalBlocks(lines):
    """
    Epytext docstrings show code as a block indented under a paragraph;
    make it a reStructuredText literal block (the paragraph ends with
    C{::}) unless it is a field's continuation or already one.
    """
    out = list(lines)
    for index in range(1, len(out) - 1):
        if out[index].strip() or not out[index - 1].strip():
            continue
        previous = out[index - 1]
        following = next((line for line in out[index + 1 :] if line.strip()), None)
        if following is None or _indent(following) <= _indent(previous):
            continue
        if previous.rstrip().endswith("::") or previous.lstrip().startswith(":"):
            continue
        if _indent(previous) > 0 and previous.lstrip()[:1] in "-*":
            continue
        if re.match(r"\s*([-*]|\d+\.)\s", following):
            # An indented list, not code.
            continue
        out[index - 1] = previous.rstrip() + (":" if previous.rstrip().endswith(":") else "::")
    return out


def _processDocstring(app, what, name, obj, options, lines):
    if what == "module":
        context = name
    else:
        context = getattr(obj, "__module__", None) or name.rsplit(".", 1)[0]
        if context not in sys.modules:
            context = name.rsplit(".", 1)[0]
    lines[:] = _literalBlocks(_convert(lines, context))


def _publicBases(app, name, obj, options, bases):
    """
    Show only public bases: a private helper base is an implementation
    detail.
    """
    bases[:] = [
        base
        for base in bases
        if not (
            getattr(base, "__module__", "").startswith("xmppws")
            and (
                base.__name__.startswith("_")
                or any(part.startswith("_") for part in base.__module__.split("."))
            )
        )
    ]


def setup(app):
    app.connect("autodoc-process-docstring", _processDocstring)
    app.connect("autodoc-process-bases", _publicBases)
    return {"parallel_read_safe": True, "version": "1"}
