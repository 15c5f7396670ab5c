#!/usr/bin/env python3
"""Layout rules of the library's headers, checked by ctest (test `layout_limits`):

- no header under include/ longer than 800 lines (past that a header holds two concerns);
- no function under include/ longer than 120 lines (a reader takes a function in at once);
- no file of the repository names a document that is not in it (the team's design notes, which
  live outside the repository).

Functions are found by brace matching on the source with comments and string literals blanked:
a `{` that closes a line whose text before it ends with `)` (optionally followed by qualifiers
such as const, noexcept, override, a trailing return type or a requires-clause) opens a function
body unless the line starts a control statement. Lambdas are counted inside their function.
Prints every violation and exits 1 if there is one.
"""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_HEADER_LINES = 800
MAX_FUNCTION_LINES = 120

CONTROL = re.compile(r"^\s*(?:\}\s*)?(?:if|for|while|switch|catch|do|else|try)\b")
STRUCTURE = re.compile(r"^\s*(?:template\s*<.*>\s*)?(?:class|struct|union|namespace|enum)\b")


def blank(text):
    """Comments and string/char literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c == '"' and text.startswith('R"', i - 1) is False and text[max(0, i - 1)] == "R":
            m = re.match(r'"([^(]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (min(j, n) - i - 1) + (c if j < n else ""))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


QUALIFIED_CLOSE = re.compile(r"\)\s*(?:const|noexcept(?:\(.*\))?|override|final|mutable|&|->\s*[\w:<>,&*\s]+|"
                             r"requires\b.*)*\s*$")


def functions(text):
    """(first line, line count, head) of every outermost function body in `text` (blanked)."""
    lines = text.split("\n")
    found = []
    stack = []  # per open brace: (is a function body, start line, head)
    for ln, line in enumerate(lines):
        for col, ch in enumerate(line):
            if ch == "{":
                head = line[:col].strip()
                if not head:  # the brace on a line of its own: the declaration ends on an earlier line
                    k = ln - 1
                    while k >= 0 and not lines[k].strip():
                        k -= 1
                    head = lines[k].strip() if k >= 0 else ""
                is_fn = (QUALIFIED_CLOSE.search(head) is not None and not CONTROL.match(head)
                         and not STRUCTURE.match(head) and "](" not in head.replace(" ", "")
                         and not head.endswith(("=", ",", "(", "return")))
                inside = any(f for f, _, _ in stack)
                stack.append((is_fn and not inside, ln, head))
            elif ch == "}" and stack:
                is_fn, start, head = stack.pop()
                if is_fn:
                    found.append((start + 1, ln - start + 1, head))
    return found


def main():
    problems = []
    for path in sorted((ROOT / "include").rglob("*")):
        if path.suffix not in (".hpp", ".cuh", ".h"):
            continue
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        count = text.count("\n")
        if count > MAX_HEADER_LINES:
            problems.append(f"{rel}: {count} lines (at most {MAX_HEADER_LINES})")
        for start, length, head in functions(blank(text)):
            if length > MAX_FUNCTION_LINES:
                problems.append(f"{rel}:{start}: a function of {length} lines (at most {MAX_FUNCTION_LINES}): "
                                f"{head[:80]}")
    try:
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    absent_doc = "DESIGN" + ".md"
    for f in files:
        p = ROOT / f
        if p.is_file() and p.suffix in (".hpp", ".cuh", ".cpp", ".cu", ".md", ".txt", ".py", ".sh", ".cmake", ".in"):
            if absent_doc in p.read_text(encoding="utf-8", errors="replace"):
                problems.append(f"{f}: names {absent_doc}, which is not in this repository")
    for p in problems:
        print(p)
    print(f"layout: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
