#!/usr/bin/env python3
"""README.md's code compiles as written (the ctest Readme.SnippetsCompile).

Every ```cpp block of README.md, indented ones (inside list items) too:
  - a block with its own `int main(` is a whole program, compiled as it is;
  - any other block is a fragment of a function body, compiled as the body of a function of its
    own after tests/readme/prelude.hpp: every public shuttle header, {fmt},
    std::chrono_literals, and stand-ins such as use(), work(), Job for the reader's own code.
A block that is not C++ to compile is fenced with another language (```text, ```sh, ...).
Compiled with -std=c++20 -Wall -Wextra -Werror, syntax only (nothing is linked or run).

usage: snippets.py README.md SCRATCH_DIR CXX [-Iinclude_dir ...]
"""
import pathlib
import re
import subprocess
import sys


def blocks(markdown):
    """(first line number, code) of every ```cpp block, its fence's indentation removed."""
    lines = markdown.splitlines()
    at = 0
    while at < len(lines):
        opening = re.fullmatch(r"( *)```cpp", lines[at])
        at += 1
        if not opening:
            continue
        indent = len(opening.group(1))
        first = at + 1
        code = []
        while at < len(lines) and not re.fullmatch(r" *```", lines[at]):
            code.append(lines[at][indent:] if lines[at][:indent].isspace() else lines[at])
            at += 1
        at += 1
        yield first, "\n".join(code) + "\n"


def main():
    readme, scratch, compiler = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
    include_flags = sys.argv[4:]
    scratch.mkdir(parents=True, exist_ok=True)
    prelude = pathlib.Path(__file__).resolve().parent / "prelude.hpp"
    sources = []
    fragments = [f'#include "{prelude}"\n']
    found = list(blocks(readme.read_text()))
    if not found:
        sys.exit(f"no ```cpp block in {readme}")
    for number, (line, code) in enumerate(found, 1):
        if re.search(r"\bint main\(", code):
            source = scratch / f"program_{number}.cpp"
            source.write_text(f'#line {line} "{readme}"\n{code}')
            sources.append(source)
        else:
            fragments.append(f'void readme_block_{number}() {{\n#line {line} "{readme}"\n{code}}}\n')
    source = scratch / "fragments.cpp"
    source.write_text("".join(fragments))
    sources.append(source)
    failed = False
    for source in sources:
        command = [compiler, "-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                   *include_flags, str(source)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            failed = True
            print(f"== {source.name} does not compile:\n{done.stderr}")
    print(f"{readme.name}: {len(found)} ```cpp blocks ({len(sources) - 1} whole programs); "
          f"{'some do not compile' if failed else 'all compile'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
