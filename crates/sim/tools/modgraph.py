#!/usr/bin/env python3
"""Print the module import graph of a Rust crate's `src/` and its cycles.

    python3 crates/sim/tools/modgraph.py [crates/sim/src] [--top] [--dot]

One node per file (`sim`, `check::engine`, `trace` for trace/mod.rs, `lib`
for lib.rs). An edge `a -> b` means code in `a` names an item defined in `b`
through `crate::`, `super::`, `self::` or a child module's name, in a `use`
or inline. A name is followed through re-exports (`pub use`) to the module
that defines it, so naming `crate::Sim` is an edge to `sim`, not to `lib`;
the re-exports themselves (a facade, such as lib.rs's) are not edges.
Comments, strings and `#[cfg(test)] mod tests { .. }` are skipped.
Method calls are not followed: an `impl X` block in another file is an edge
from that file to X's (it names X), not back, so keep such blocks in a file
the one defining X never calls into (DESIGN.md's layers).
`--top` folds submodules into their top-level module (`check::engine` ->
`check`) and drops edges inside one. It prints the edges, then the strongly
connected components of more than one node (the cycles), and exits 1 if
there is one, so it can be used as a check. `--layers` prints instead every
edge from a module to one of a higher layer (`LAYERS`, the sim crate's, as
DESIGN.md's "Layers, one concept per file" lists them) and exits 1 if there
is one.
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"

# The sim crate's layers, bottom first, by top-level module (DESIGN.md).
LAYERS = {
    "lib": 1, "exit": 1, "stats": 1, "time": 1, "rng": 1, "schedule": 1, "stack": 1,
    "tables": 1, "trace": 1,
    "scheduler": 2,
    "runtime": 3, "driver": 3,
    "process": 4, "machine": 4, "stackless": 4, "async_proc": 4,
    "sim": 5, "builder": 5, "threaded": 5, "deadlock": 5, "report": 5, "summary": 5,
    "explore": 6, "check": 6, "strategy": 6, "conformance": 6, "workload": 6,
}


def strip(text):
    """Comments and string literals out, newlines kept."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif re.match(r'b?r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            if m:
                end = '"' + m.group(1)
                j = text.find(end, i + m.end())
                j = n if j < 0 else j + len(end)
            else:
                j = i + 1
                if text[i] == "b":
                    j += 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                j += 1
            out.append('""' + "\n" * text[i:j].count("\n"))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text[i:j].count("\n"))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]) or text.startswith("'\\", i):
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x..|\\.|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_test_modules(text):
    """`#[cfg(test)] mod name { .. }` removed."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([a-z]+\))?\s+)?mod\s+" + IDENT + r"\s*\{", text)
        if not m:
            return text
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        text = text[:m.start()] + "\n" * text[m.start():j].count("\n") + text[j:]


def split_top(s):
    """Split a use-tree list at top-level commas."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def expand(tree, prefix=()):
    """A use tree -> [(path segments, name bound or None for glob)]."""
    tree = tree.strip()
    if not tree:
        return []
    m = re.match(r"^(.*?)::\s*\{(.*)\}$", tree, re.S)
    if m:
        head = tuple(s.strip() for s in m.group(1).split("::") if s.strip())
        out = []
        for part in split_top(m.group(2)):
            out += expand(part, prefix + head)
        return out
    if tree.startswith("{") and tree.endswith("}"):
        out = []
        for part in split_top(tree[1:-1]):
            out += expand(part, prefix)
        return out
    alias = None
    m = re.match(r"^(.*)\s+as\s+(" + IDENT + r")$", tree, re.S)
    if m:
        tree, alias = m.group(1).strip(), m.group(2)
    segs = prefix + tuple(s.strip() for s in tree.split("::") if s.strip())
    if segs and segs[-1] == "*":
        return [(segs[:-1], None)]
    if segs and segs[-1] == "self":
        segs = segs[:-1]
        return [(segs, alias or (segs[-1] if segs else None))]
    return [(segs, alias or (segs[-1] if segs else None))]


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}  # module tuple -> stripped text
        for root, _, names in os.walk(src):
            for name in names:
                if not name.endswith(".rs"):
                    continue
                rel = os.path.relpath(os.path.join(root, name), src)[:-3].split(os.sep)
                if rel == ["lib"] or rel == ["main"]:
                    mod = ()
                elif rel[-1] == "mod":
                    mod = tuple(rel[:-1])
                else:
                    mod = tuple(rel)
                with open(os.path.join(root, name)) as f:
                    self.files[mod] = drop_test_modules(strip(f.read()))
        self.uses = {mod: self.parse_uses(text) for mod, text in self.files.items()}

    def parse_uses(self, text):
        out = []  # (is_pub, segments, bound name)
        for m in re.finditer(r"(?<![A-Za-z0-9_])(pub(\s*\([^)]*\))?\s+)?use\s+([^;]*);", text):
            for segs, name in expand(m.group(3)):
                out.append((bool(m.group(1)), segs, name))
        return out

    def is_mod(self, mod):
        return mod in self.files

    def resolve(self, here, segs, depth=0):
        """The module defining the item `segs` names from module `here`, or None (outside)."""
        if not segs:
            return here
        first, rest = segs[0], segs[1:]
        if first == "crate":
            cur = ()
        elif first == "super":
            cur = here[:-1]
            while rest and rest[0] == "super":
                cur, rest = cur[:-1], rest[1:]
        elif first == "self":
            cur = here
        elif self.is_mod(here + (first,)):
            cur, rest = here + (first,), rest
        else:
            # a name a `use` bound; that `use` is the edge
            return None
        while rest and self.is_mod(cur + (rest[0],)):
            cur, rest = cur + (rest[0],), rest[1:]
        if not rest or depth > 8:
            return cur
        # follow a re-export of `rest[0]` by `cur` to where it is defined
        for _, useg, name in self.uses[cur]:
            if name == rest[0] and useg and useg[0] in ("crate", "super", "self") or (
                name == rest[0] and useg and self.is_mod(cur + (useg[0],))
            ):
                target = self.resolve(cur, useg, depth + 1)
                if target is not None:
                    return target
        return cur

    def edges(self):
        out = {}
        for here, text in self.files.items():
            deps = out.setdefault(here, set())
            # `use` lines; a `pub use` is a re-export (a facade), not an edge
            for is_pub, segs, _ in self.uses[here]:
                if is_pub and here != () and self.is_facade_use(here, segs):
                    continue
                if is_pub and here == ():
                    continue
                t = self.resolve(here, segs)
                if t is not None:
                    deps.add(t)
            body = re.sub(r"(?<![A-Za-z0-9_])(pub(\s*\([^)]*\))?\s+)?use\s+[^;]*;", "", text)
            body = re.sub(r"(?<![A-Za-z0-9_])(pub(\s*\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*;", "", body)
            for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:crate|super|self|" + IDENT + r")(?:\s*::\s*" + IDENT + r")+)", body):
                segs = tuple(s.strip() for s in m.group(1).split("::"))
                if segs[0] in ("crate", "super", "self") or self.is_mod(here + (segs[0],)):
                    t = self.resolve(here, segs)
                    if t is not None:
                        deps.add(t)
            deps.discard(here)
        return out

    def is_facade_use(self, here, segs):
        # `pub use self::child::X` / `pub use child::X` in a module file
        return bool(segs) and (segs[0] == "self" or self.is_mod(here + (segs[0],)))


def name(mod):
    return "::".join(mod) if mod else "lib"


def sccs(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    top = "--top" in sys.argv
    src = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    crate = Crate(src)
    edges = crate.edges()
    if top:
        folded = {}
        for a, bs in edges.items():
            fa = a[:1]
            for b in bs:
                if b[:1] != fa:
                    folded.setdefault(fa, set()).add(b[:1])
            folded.setdefault(fa, set())
        edges = folded
    if "--layers" in sys.argv:
        def layer(m):
            return LAYERS.get(m[0] if m else "lib")

        bad = 0
        for a in sorted(edges):
            if layer(a) is None:
                print(f"{name(a)}: no layer (add it to LAYERS)")
                bad += 1
            for b in sorted(edges[a]):
                if layer(a) is not None and layer(b) is not None and layer(b) > layer(a):
                    print(f"up: {name(a)} (layer {layer(a)}) -> {name(b)} (layer {layer(b)})")
                    bad += 1
        print("no edge goes up a layer" if not bad else f"{bad} problems")
        return 1 if bad else 0
    nodes = set(edges)
    for bs in edges.values():
        nodes |= bs
    named = {name(a): sorted(name(b) for b in bs) for a, bs in edges.items()}
    if "--dot" in sys.argv:
        print("digraph sim {")
        for a in sorted(named):
            for b in named[a]:
                print(f'  "{a}" -> "{b}";')
        print("}")
        return 0
    for a in sorted(named):
        print(f"{a} -> {', '.join(named[a]) if named[a] else '(nothing)'}")
    cycles = [c for c in sccs(nodes, edges) if len(c) > 1]
    print()
    if not cycles:
        print("no cycle")
        return 0
    for c in cycles:
        print(f"cycle ({len(c)} modules): {', '.join(name(m) for m in c)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
