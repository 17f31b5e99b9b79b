#!/usr/bin/env python3
"""Writes sluice(1), a man page, from `sluice --experimental-dump-help` (argument-parser's JSON).

    sluice --experimental-dump-help | python3 scripts/manpage.py VERSION > sluice.1
"""
import datetime
import json
import sys


def roff(text):
    """Escapes text for roff: backslashes, and lines that start with a dot or quote."""
    out = []
    for line in (text or "").replace("\\", "\\e").split("\n"):
        out.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(out)


def names(arg):
    parts = []
    for n in arg.get("names", []):
        parts.append(("-" if n["kind"] == "short" else "--") + n["name"])
    return ", ".join(parts)


def arguments(cmd):
    lines = []
    for arg in cmd.get("arguments", []):
        if not arg.get("shouldDisplay", True) or arg.get("valueName") in ("help", "version"):
            continue
        if arg["kind"] == "positional":
            label = "\\fI" + arg["valueName"] + "\\fR" + ("..." if arg.get("isRepeating") else "")
        else:
            label = "\\fB" + names(arg) + "\\fR" + ("" if arg["kind"] == "flag" else " \\fI" + arg["valueName"] + "\\fR")
        lines += [".TP", label, roff(arg.get("abstract", ""))]
        if arg.get("defaultValue"):
            lines.append("(default: " + roff(arg["defaultValue"]) + ")")
    return lines


def command(cmd, path):
    lines = [".SS " + roff(" ".join(path)), roff(cmd.get("abstract", ""))]
    if cmd.get("discussion"):
        lines += [".PP", ".nf", roff(cmd["discussion"]), ".fi"]
    lines += arguments(cmd)
    for sub in cmd.get("subcommands", []):
        if sub.get("shouldDisplay", True) and sub["commandName"] != "help":
            lines += command(sub, path + [sub["commandName"]])
    return lines


def main():
    version = sys.argv[1] if len(sys.argv) > 1 else ""
    root = json.load(sys.stdin)["command"]
    today = datetime.date.today().isoformat()
    lines = [
        '.TH SLUICE 1 "%s" "sluice %s" "Sluice Manual"' % (today, roff(version)),
        ".SH NAME", "sluice \\- " + roff(root.get("abstract", "")),
        ".SH SYNOPSIS", "\\fBsluice\\fR \\fIcommand\\fR [\\fIoptions\\fR]",
        ".SH DESCRIPTION", ".nf", roff(root.get("discussion", "")), ".fi",
        ".SH OPTIONS",
    ] + arguments(root) + [".TP", "\\fB--version\\fR", "Show the version and the commit it was built from.",
                           ".TP", "\\fB-h, --help\\fR", "Show help; \\fBsluice help\\fR \\fIcommand\\fR for one command."]
    lines.append(".SH COMMANDS")
    for sub in root.get("subcommands", []):
        if sub.get("shouldDisplay", True) and sub["commandName"] != "help":
            lines += command(sub, ["sluice", sub["commandName"]])
    lines += [".SH FILES", "Pipeline files are YAML; the reference is docs/reference/ in the source tree.",
              "State lives in \\fI.sluice/state.db\\fR unless a file's \\fBstate:\\fR says otherwise.",
              ".SH SEE ALSO", "The README, docs/guides/ and docs/reference/ in the source tree."]
    print("\n".join(lines))


main()
