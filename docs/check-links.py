#!/usr/bin/env python3
"""Checks the relative links of docs/*.md and README.md: every linked file exists, and every
`#anchor` names a heading of the target file, by GitHub's rules (lowercase; spaces become '-';
punctuation other than '-' and '_' dropped; a repeated heading gets -1, -2, ...).

    python3 docs/check-links.py          # prints each broken link; exit 1 if there is one

Links to http(s) addresses are not followed. Headings inside fenced code blocks do not count.
A broken link inside a table that perf/all.sh writes (between `<!-- perf:NAME -->` marks) is
reported as a warning: the fix belongs in the script that writes perf/results/NAME.md.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target) but not ![image](target); the target has no spaces.
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)\)")


def lines_outside_code(text):
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def slug(heading):
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    seen = {}
    result = set()
    for line in lines_outside_code(path.read_text()):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def prose(text):
    """The text with fenced code blocks blanked (line count kept), so offsets map to lines."""
    result = []
    fenced = False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            result.append("")
        else:
            result.append("" if fenced else line)
    return "\n".join(result)


def main():
    sources = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
    cache = {}
    broken = 0
    warnings = 0
    checked = 0
    for source in sources:
        text = prose(source.read_text())
        generated = [
            (m.start(), m.end())
            for m in re.finditer(r"<!-- perf:[^>]*-->.*?<!-- /perf:[^>]*-->", text, re.S)
        ]
        # A link's text may wrap over several lines.
        for match in LINK.finditer(text):
            target = match.group(1)
            if re.match(r"^[a-z]+:", target):
                continue
            checked += 1
            number = text.count("\n", 0, match.start()) + 1
            in_generated = any(a <= match.start() < b for a, b in generated)
            file_part, _, anchor = target.partition("#")
            path = (source.parent / file_part).resolve() if file_part else source
            where = f"{source.relative_to(ROOT)}:{number}: {target}"
            if not path.exists():
                if in_generated:
                    print(f"{where}: no such file (warning: written by perf/all.sh)")
                    warnings += 1
                else:
                    print(f"{where}: no such file")
                    broken += 1
                continue
            if anchor and path.suffix == ".md":
                if path not in cache:
                    cache[path] = anchors(path)
                if anchor not in cache[path]:
                    print(f"{where}: no heading with this anchor in {path.name}")
                    broken += 1
    print(f"check-links: {checked} links checked, {broken} broken, {warnings} warnings")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
