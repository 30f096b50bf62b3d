"""Static (AST) checks over every .py file in blender_mediaidx/ for rules the pip bpy module does not enforce.

1. **bpy at import/register time.** Real Blender imports an add-on and runs its ``register()`` inside
   ``_bpy_restrict_state.RestrictBlend``: ``bpy.data`` is an empty object and ``bpy.context`` only has
   ``window_manager`` and ``preferences``. The pip ``bpy`` module swaps those on another module object, so
   code that would crash at Blender startup passes the other tests. Checked: module-level code (class
   bodies, decorators, default values, annotations included; function and lambda bodies excluded) of every
   module, and the bodies of every ``register``/``unregister`` (module functions and class methods, which
   ``register_class`` calls) plus the package functions they call, followed through same-module names,
   relative imports (``from . import mod`` / ``from .mod import fn``), ``mod.fn()`` and ``self``/``cls``
   methods. No access to ``bpy.context`` (except ``.window_manager`` / ``.preferences``, which
   ``_RestrictContext`` provides, for key maps), ``bpy.data``, ``bpy.ops``, ``getattr(bpy, "data")``, nor
   ``from bpy import context/data/ops`` (that would bind the restricted object for good).
2. **Nothing writes next to ``__file__``** (anywhere in the package): the add-on folder may be read-only and
   is replaced on update; use ``bpy.utils.extension_path_user``. Paths built from ``__file__``/``__path__``
   (also through names assigned from them) must not be opened for writing or passed to
   ``Path.write_*``/``mkdir``/``touch``/``unlink``…, ``os.makedirs``/``remove``/``rename``…,
   ``shutil.copy*``(destination)/``move``/``rmtree``.
3. **No ``sys.path`` manipulation** (``append``/``insert``/``extend``/assignment/``site.addsitedir``) outside an
   ``if __name__ == "__main__":`` block: bundled wheels are what the manifest is for.

The checker runs on whatever files exist, so it keeps working as the package grows. It is tested on small
good and bad code samples below.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "blender_mediaidx"

RESTRICTED = frozenset({"context", "data", "ops"})
CONTEXT_ALLOWED = frozenset({"window_manager", "preferences"})  # what _RestrictContext provides
ENTRY_POINTS = frozenset({"register", "unregister"})

PATH_WRITE_METHODS = frozenset({
    "write_text", "write_bytes", "touch", "mkdir", "rename", "replace", "unlink", "rmdir", "symlink_to",
    "hardlink_to", "chmod",
})
FS_WRITE_ANY_ARG = frozenset({
    "os.makedirs", "os.mkdir", "os.remove", "os.unlink", "os.rmdir", "os.removedirs", "os.rename",
    "os.renames", "os.replace", "os.symlink", "os.link", "os.chmod", "os.truncate", "shutil.rmtree",
    "shutil.move",
})
FS_WRITE_DEST = frozenset({
    "shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree", "shutil.copymode", "shutil.copystat",
})
OPEN_FUNCS = frozenset({"open", "io.open", "codecs.open", "builtins.open"})
SYS_PATH_MUTATORS = frozenset({
    "append", "insert", "extend", "remove", "pop", "clear", "reverse", "sort", "__setitem__",
    "__delitem__", "__iadd__",
})


@dataclass(frozen=True, order=True)
class Violation:
    path: str
    line: int
    rule: str  # "bpy-at-register" | "file-write" | "sys-path" | "syntax"
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"


@dataclass
class Module:
    key: tuple[str, ...]  # () for the package's __init__, ("core", "client") for core/client.py
    path: str
    tree: ast.Module
    is_package: bool
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    aliases: dict[str, set[tuple]] = field(default_factory=dict)  # name -> {("module", key) | ("attr", key, n)}
    bpy_names: set[str] = field(default_factory=lambda: {"bpy"})
    restricted_names: dict[str, str] = field(default_factory=dict)  # `from bpy import context as C` -> C
    sys_names: set[str] = field(default_factory=lambda: {"sys"})
    sys_path_names: set[str] = field(default_factory=set)
    std_names: dict[str, str] = field(default_factory=dict)  # `from os import makedirs` -> "os.makedirs"

    @property
    def name(self) -> str:
        return ".".join(self.key) or "__init__"


# ----------------------------------------------------------------------------------------------- helpers


def _is_main_guard(node: ast.AST) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    t = node.test
    if len(t.ops) != 1 or not isinstance(t.ops[0], ast.Eq):
        return False
    sides = [t.left, t.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return bool(names and consts)


def _function_header(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[ast.AST]:
    """What a def/lambda statement evaluates when it runs: decorators, defaults, annotations."""
    a = fn.args
    out: list[ast.AST] = [*a.defaults, *(d for d in a.kw_defaults if d is not None)]
    if not isinstance(fn, ast.Lambda):
        out += fn.decorator_list
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
            if arg is not None and arg.annotation is not None:
                out.append(arg.annotation)
        if fn.returns is not None:
            out.append(fn.returns)
    return out


def executed_nodes(nodes: Iterable[ast.AST], *, skip_main: bool = True) -> Iterator[ast.AST]:
    """Every node evaluated when ``nodes`` run: function and lambda bodies are not (they run later), their
    headers are; class bodies are; an ``if __name__ == "__main__":`` block is not (when ``skip_main``).
    Yields def nodes themselves too (without descending into their bodies)."""
    stack = list(nodes)[::-1]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield node
            stack.extend(_function_header(node)[::-1])
            continue
        if skip_main and _is_main_guard(node):
            stack.extend(node.orelse[::-1])
            continue
        yield node
        stack.extend(list(ast.iter_child_nodes(node))[::-1])


def _dotted(expr: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if isinstance(expr, ast.Name):
        parts.append(expr.id)
        return parts[::-1]
    return None


def _module_key(rel: Path) -> tuple[tuple[str, ...], bool]:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        return tuple(parts[:-1]), True
    return tuple(parts), False


# ----------------------------------------------------------------------------------------------- checker


class Checker:
    def __init__(self, sources: dict[str, str]) -> None:
        self._found: dict[tuple[str, int, str], Violation] = {}
        self.modules: dict[tuple[str, ...], Module] = {}
        for rel, text in sorted(sources.items()):
            key, is_pkg = _module_key(Path(rel))
            try:
                tree = ast.parse(text, filename=rel)
            except SyntaxError as exc:
                self._add(Violation(rel, exc.lineno or 0, "syntax", str(exc)))
                continue
            self.modules[key] = Module(key=key, path=rel, tree=tree, is_package=is_pkg)
        for mod in self.modules.values():
            self._index(mod)

    def _add(self, v: Violation) -> None:
        """One violation per place and rule (the first found is kept, with its call chain)."""
        self._found.setdefault((v.path, v.line, v.rule), v)

    # -- indexing
    def _index(self, mod: Module) -> None:
        for parent in ast.walk(mod.tree):
            for child in ast.iter_child_nodes(parent):
                mod.parents[child] = parent

        def top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
            for stmt in body:
                yield stmt
                if isinstance(stmt, ast.If | ast.Try | ast.With):
                    for sub in ("body", "orelse", "finalbody"):
                        yield from top_level(getattr(stmt, sub, []))
                    for h in getattr(stmt, "handlers", []):
                        yield from top_level(h.body)

        for stmt in top_level(mod.tree.body):
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                mod.functions[stmt.name] = stmt
            elif isinstance(stmt, ast.ClassDef):
                mod.classes[stmt.name] = stmt

        package = mod.key if mod.is_package else mod.key[:-1]
        # `from bpy import context` binds the (restricted) object for good only when run at import time;
        # inside a function it is flagged where it runs in register() and harmless elsewhere.
        import_time = {id(n) for n in executed_nodes(mod.tree.body)}
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    bound = a.asname or a.name.partition(".")[0]
                    if a.name == "bpy" or (a.name.startswith("bpy.") and not a.asname):
                        mod.bpy_names.add(bound)
                    elif a.name == "sys":
                        mod.sys_names.add(bound)
                    elif (a.name.split(".")[:2] in (["bpy", "context"], ["bpy", "data"], ["bpy", "ops"])
                          and id(node) in import_time):
                        mod.restricted_names[bound] = a.name
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    m = node.module or ""
                    for a in node.names:
                        bound = a.asname or a.name
                        if m == "bpy" and a.name in RESTRICTED:
                            if id(node) in import_time:
                                mod.restricted_names[bound] = f"bpy.{a.name}"
                        elif m.split(".")[:2] in (["bpy", "context"], ["bpy", "data"], ["bpy", "ops"]):
                            if id(node) in import_time:
                                mod.restricted_names[bound] = f"{m}.{a.name}"
                        elif m == "sys" and a.name == "path":
                            mod.sys_path_names.add(bound)
                        elif m in ("os", "shutil", "io", "codecs", "builtins", "site"):
                            mod.std_names[bound] = f"{m}.{a.name}"
                    continue
                up = node.level - 1
                if up > len(package):
                    continue
                base = package[: len(package) - up] + tuple((node.module or "").split(".") if node.module else ())
                for a in node.names:
                    if a.name == "*":
                        continue
                    bound = a.asname or a.name
                    sub = (*base, a.name)
                    ref: tuple = ("module", sub) if sub in self.modules else ("attr", base, a.name)
                    mod.aliases.setdefault(bound, set()).add(ref)

    def _std_name(self, mod: Module, func: ast.AST) -> str | None:
        chain = _dotted(func)
        if not chain:
            return None
        if len(chain) == 1:
            return mod.std_names.get(chain[0], chain[0])
        return ".".join(chain)

    # -- rule 1: bpy access
    def _bpy_accesses(self, mod: Module, nodes: Iterable[ast.AST]) -> Iterator[tuple[int, str]]:
        for node in nodes:
            if isinstance(node, ast.Attribute) and node.attr in RESTRICTED:
                if isinstance(node.value, ast.Name) and node.value.id in mod.bpy_names:
                    parent = mod.parents.get(node)
                    if (node.attr == "context" and isinstance(parent, ast.Attribute)
                            and parent.value is node and parent.attr in CONTEXT_ALLOWED):
                        continue
                    yield node.lineno, f"{node.value.id}.{node.attr}"
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
                if (len(node.args) >= 2 and isinstance(node.args[0], ast.Name)
                        and node.args[0].id in mod.bpy_names and isinstance(node.args[1], ast.Constant)
                        and node.args[1].value in RESTRICTED):
                    yield node.lineno, f"getattr({node.args[0].id}, {node.args[1].value!r})"
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in mod.restricted_names:
                yield node.lineno, f"{node.id} (= {mod.restricted_names[node.id]})"
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                m = node.module
                if m == "bpy":
                    for a in node.names:
                        if a.name in RESTRICTED:
                            yield node.lineno, f"from bpy import {a.name}"
                elif m.split(".")[:2] in (["bpy", "context"], ["bpy", "data"], ["bpy", "ops"]):
                    yield node.lineno, f"from {m} import …"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[:2] in (["bpy", "context"], ["bpy", "data"], ["bpy", "ops"]):
                        yield node.lineno, f"import {a.name}"

    def check_import_time(self, mod: Module) -> None:
        for line, what in self._bpy_accesses(mod, executed_nodes(mod.tree.body)):
            self._add(Violation(mod.path, line, "bpy-at-register",
                                          f"{what} evaluated when the module is imported"))

    def _resolve_refs(self, refs: set[tuple], rest: list[str], _depth: int = 0) -> set[tuple]:
        out: set[tuple] = set()
        if _depth > 8:  # re-export cycles (or an import of a module that does not exist yet)
            return out
        for ref in refs:
            cur = {ref}
            for name in rest:
                nxt: set[tuple] = set()
                for r in cur:
                    if r[0] == "module":
                        key = r[1]
                        if (*key, name) in self.modules:
                            nxt.add(("module", (*key, name)))
                        elif key in self.modules:
                            nxt.add(("attr", key, name))
                    elif r[0] == "attr":
                        key, attr = r[1], r[2]
                        target = self.modules.get(key)
                        if target and attr in target.classes:
                            nxt.add(("method", key, attr, name))
                        elif target and attr in target.aliases:
                            nxt |= self._resolve_refs(target.aliases[attr] - {r}, [name], _depth + 1)
                cur = nxt
            out |= cur
        return out

    def _call_targets(self, mod: Module, call: ast.Call, cls: str | None,
                      local_defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]):
        chain = _dotted(call.func)
        if not chain:
            return
        head, rest = chain[0], chain[1:]
        if not rest and head in local_defs:
            yield mod, local_defs[head], cls, f"{mod.name}.{local_defs[head].name}"
            return
        refs: set[tuple] = set()
        if head in ("self", "cls") and cls is not None:
            refs.add(("attr", mod.key, cls))
        elif head in mod.functions or head in mod.classes:
            refs.add(("attr", mod.key, head))
        elif head in mod.aliases:
            refs |= mod.aliases[head]
        for ref in self._resolve_refs(refs, rest):
            if ref[0] == "attr":
                target = self.modules.get(ref[1])
                if target is None:
                    continue
                name = ref[2]
                if name in target.functions:
                    yield target, target.functions[name], None, f"{target.name}.{name}"
                elif name in target.classes:
                    init = self._method(target.classes[name], "__init__")
                    if init is not None:
                        yield target, init, name, f"{target.name}.{name}.__init__"
                elif name in target.aliases:  # re-exported: from .x import f in a package __init__
                    for r in target.aliases[name]:
                        if r[0] == "attr" and (t2 := self.modules.get(r[1])) and r[2] in t2.functions:
                            yield t2, t2.functions[r[2]], None, f"{t2.name}.{r[2]}"
            elif ref[0] == "method":
                target = self.modules.get(ref[1])
                if target is None:
                    continue
                meth = self._method(target.classes[ref[2]], ref[3])
                if meth is not None:
                    yield target, meth, ref[2], f"{target.name}.{ref[2]}.{ref[3]}"

    @staticmethod
    def _method(cls_node: ast.ClassDef, name: str):
        for stmt in cls_node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == name:
                return stmt
        return None

    def check_function(self, mod: Module, fn: ast.FunctionDef | ast.AsyncFunctionDef, cls: str | None,
                       chain: list[str], seen: set[tuple]) -> None:
        ident = (mod.key, cls, fn.name, fn.lineno)
        if ident in seen:
            return
        seen.add(ident)
        nodes = list(executed_nodes(fn.body, skip_main=False))
        local_defs = {n.name: n for n in nodes if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        trail = " → ".join(f"{c}()" for c in chain)
        for line, what in self._bpy_accesses(mod, nodes):
            self._add(Violation(mod.path, line, "bpy-at-register", f"{what} reached from {trail}"))
        for node in nodes:
            if isinstance(node, ast.Call):
                for tmod, tfn, tcls, label in self._call_targets(mod, node, cls, local_defs):
                    self.check_function(tmod, tfn, tcls, [*chain, label], seen)

    def check_entry_points(self, mod: Module) -> int:
        count = 0
        for name in ENTRY_POINTS:
            if name in mod.functions:
                self.check_function(mod, mod.functions[name], None, [f"{mod.name}.{name}"], set())
                count += 1
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.ClassDef):
                for name in ENTRY_POINTS:
                    meth = self._method(node, name)
                    # bpy.utils.register_class calls a class's `register`/`unregister` classmethods
                    if meth is not None and any(isinstance(d, ast.Name) and d.id == "classmethod"
                                                for d in meth.decorator_list):
                        self.check_function(mod, meth, node.name, [f"{mod.name}.{node.name}.{name}"], set())
                        count += 1
        return count

    # -- rule 2: writes next to __file__
    @staticmethod
    def _tainted(expr: ast.AST | None, tainted: set[str]) -> bool:
        if expr is None:
            return False
        for n in ast.walk(expr):
            if isinstance(n, ast.Name) and (n.id in ("__file__", "__path__") or n.id in tainted):
                return True
            if isinstance(n, ast.Attribute) and n.attr in ("__file__", "__path__"):
                return True
        return False

    def _propagate(self, nodes: list[ast.AST], tainted: set[str]) -> set[str]:
        tainted = set(tainted)
        changed = True
        while changed:
            changed = False
            for node in nodes:
                targets: list[ast.AST] = []
                value: ast.AST | None = None
                if isinstance(node, ast.Assign):
                    targets, value = node.targets, node.value
                elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.NamedExpr):
                    targets, value = [node.target], node.value
                elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
                    targets, value = [node.target], node.iter
                elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                    targets, value = [node.optional_vars], node.context_expr
                if value is None or not self._tainted(value, tainted):
                    continue
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name) and n.id not in tainted:
                            tainted.add(n.id)
                            changed = True
        return tainted

    def _file_writes(self, mod: Module, nodes: list[ast.AST], tainted: set[str]) -> Iterator[tuple[int, str]]:
        def arg(call: ast.Call, pos: int, kw: str) -> ast.AST | None:
            if len(call.args) > pos:
                return call.args[pos]
            return next((k.value for k in call.keywords if k.arg == kw), None)

        def writes(mode: ast.AST | None) -> bool:
            if mode is None:
                return False
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
                return any(c in mode.value for c in "wax+")
            return True  # unknown mode: assume it writes

        for node in nodes:
            if not isinstance(node, ast.Call):
                continue
            name = self._std_name(mod, node.func)
            if name in OPEN_FUNCS:
                if self._tainted(arg(node, 0, "file"), tainted) and writes(arg(node, 1, "mode")):
                    yield node.lineno, f"{name}(<path from __file__>, mode=write)"
            elif isinstance(node.func, ast.Attribute) and self._tainted(node.func.value, tainted):
                attr = node.func.attr
                if attr in PATH_WRITE_METHODS:
                    yield node.lineno, f"<path from __file__>.{attr}()"
                elif attr == "open" and writes(arg(node, 0, "mode")):
                    yield node.lineno, "<path from __file__>.open(mode=write)"
            if name in FS_WRITE_ANY_ARG and any(self._tainted(a, tainted) for a in
                                                [*node.args, *(k.value for k in node.keywords)]):
                yield node.lineno, f"{name}(<path from __file__>)"
            elif name in FS_WRITE_DEST and self._tainted(arg(node, 1, "dst"), tainted):
                yield node.lineno, f"{name}(…, <path from __file__>)"

    def check_file_writes(self, mod: Module) -> None:
        module_nodes = list(executed_nodes(mod.tree.body, skip_main=False))
        module_tainted = self._propagate(module_nodes, set())
        scopes = [module_nodes]
        scopes += [list(ast.walk(fn)) for fn in ast.walk(mod.tree)
                   if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)]
        for nodes in scopes:
            tainted = self._propagate(nodes, module_tainted)
            for line, what in self._file_writes(mod, nodes, tainted):
                self._add(Violation(mod.path, line, "file-write",
                                              f"{what}: the add-on folder may be read-only and is replaced "
                                              "on update; use bpy.utils.extension_path_user"))

    # -- rule 3: sys.path
    def check_sys_path(self, mod: Module) -> None:
        def is_sys_path(e: ast.AST) -> bool:
            return (isinstance(e, ast.Attribute) and e.attr == "path" and isinstance(e.value, ast.Name)
                    and e.value.id in mod.sys_names) or (isinstance(e, ast.Name) and e.id in mod.sys_path_names)

        def hit(node: ast.AST, what: str) -> None:
            self._add(Violation(mod.path, node.lineno, "sys-path",
                                          f"{what} outside `if __name__ == \"__main__\":`; ship wheels "
                                          "in the manifest instead"))

        for node in executed_nodes([mod.tree], skip_main=True):
            self._sys_path_node(node, is_sys_path, hit, mod)

    def _sys_path_node(self, node, is_sys_path, hit, mod: Module) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            body = node.body if isinstance(node.body, list) else [node.body]
            for sub in executed_nodes(body, skip_main=True):
                self._sys_path_node(sub, is_sys_path, hit, mod)
            return
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in SYS_PATH_MUTATORS and is_sys_path(f.value):
                hit(node, f"sys.path.{f.attr}()")
            elif self._std_name(mod, f) == "site.addsitedir":
                hit(node, "site.addsitedir()")
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for t in targets:
                if is_sys_path(t) or (isinstance(t, ast.Subscript) and is_sys_path(t.value)):
                    hit(node, "assignment to sys.path")

    # -- all
    def run(self) -> list[Violation]:
        self.entry_points = 0
        for mod in self.modules.values():
            self.check_import_time(mod)
            self.entry_points += self.check_entry_points(mod)
            self.check_file_writes(mod)
            self.check_sys_path(mod)
        return sorted(self._found.values())


def check_sources(sources: dict[str, str]) -> list[Violation]:
    """``sources``: relative path inside the package ("__init__.py", "ui/panels.py") -> code."""
    return Checker(sources).run()


def package_sources(root: Path = PACKAGE) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*.py"))
        if "__pycache__" not in p.parts and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


# ------------------------------------------------------------------------------------------------- tests


def test_real_package_is_clean() -> None:
    sources = package_sources()
    assert "__init__.py" in sources, f"no blender_mediaidx/__init__.py under {PACKAGE}"
    checker = Checker(sources)
    violations = checker.run()
    assert not violations, "blender_mediaidx breaks Blender's add-on rules:\n" + "\n".join(map(str, violations))
    assert checker.entry_points >= 2, "register()/unregister() not found in blender_mediaidx/__init__.py"


def _rules(sources: dict[str, str]) -> list[tuple[str, str, int]]:
    return [(v.path, v.rule, v.line) for v in check_sources(sources)]


BAD_SAMPLES: dict[str, tuple[dict[str, str], list[tuple[str, str, int]]]] = {
    "module-level context": (
        {"__init__.py": "import bpy\nSCENE = bpy.context.scene\n"},
        [("__init__.py", "bpy-at-register", 2)],
    ),
    "from bpy import context at import": (
        {"__init__.py": "from bpy import context, types\n\n\ndef register():\n    pass\n"},
        [("__init__.py", "bpy-at-register", 1)],
    ),
    "alias in register": (
        {"__init__.py": "import bpy as b\n\n\ndef register():\n    n = len(b.data.objects)\n"},
        [("__init__.py", "bpy-at-register", 5)],
    ),
    "helper called by register": (
        {"__init__.py": (
            "import bpy\n\n\ndef _setup():\n    bpy.ops.wm.save_mainfile()\n\n\n"
            "def register():\n    _setup()\n\n\ndef unregister():\n    pass\n"
        )},
        [("__init__.py", "bpy-at-register", 5)],
    ),
    "from bpy import inside register": (
        {"__init__.py": "def register():\n    from bpy import data\n\n    data.objects.new('x', None)\n"},
        [("__init__.py", "bpy-at-register", 2)],
    ),
    "across modules": (
        {
            "__init__.py": "def register():\n    from . import registration\n\n    registration.register()\n",
            "registration.py": (
                "from .core.props import ensure_defaults\n\n\n"
                "def register():\n    ensure_defaults()\n"
            ),
            "core/__init__.py": "",
            "core/props.py": "import bpy\n\n\ndef ensure_defaults():\n    bpy.context.scene.frame_start = 1001\n",
        },
        [("core/props.py", "bpy-at-register", 5)],
    ),
    "module attribute call in sub-package": (
        {
            "__init__.py": "from .ui import panels\n\n\ndef register():\n    panels.install()\n",
            "ui/__init__.py": "",
            "ui/panels.py": "import bpy\n\n\ndef install():\n    return bpy.data.scenes[0]\n",
        },
        [("ui/panels.py", "bpy-at-register", 5)],
    ),
    "re-exported helper": (
        {
            "__init__.py": "from . import ui\n\n\ndef register():\n    ui.install()\n",
            "ui/__init__.py": "from .panels import install\n",
            "ui/panels.py": "import bpy\n\n\ndef install():\n    bpy.ops.mesh.primitive_cube_add()\n",
        },
        [("ui/panels.py", "bpy-at-register", 5)],
    ),
    "class body, default argument, decorator": (
        {"__init__.py": (
            "import bpy\n\n\nclass P(bpy.types.Panel):\n    label = bpy.context.scene.name\n\n\n"
            "def f(scene=bpy.context.scene):\n    return scene\n\n\n"
            "@deco(bpy.data.objects)\ndef g():\n    pass\n"
        )},
        [("__init__.py", "bpy-at-register", 5), ("__init__.py", "bpy-at-register", 8),
         ("__init__.py", "bpy-at-register", 12)],
    ),
    "classmethod register via cls": (
        {"__init__.py": (
            "import bpy\n\n\nclass Props(bpy.types.PropertyGroup):\n    @classmethod\n"
            "    def register(cls):\n        cls._init()\n\n    @classmethod\n    def _init(cls):\n"
            "        bpy.data.objects.new('x', None)\n"
        )},
        [("__init__.py", "bpy-at-register", 11)],
    ),
    "getattr and context beyond window_manager": (
        {"__init__.py": (
            "import bpy\n\n\ndef register():\n    getattr(bpy, 'data')\n"
            "    wm = bpy.context.window_manager\n    bpy.context.scene\n"
        )},
        [("__init__.py", "bpy-at-register", 5), ("__init__.py", "bpy-at-register", 7)],
    ),
    "write next to __file__": (
        {"__init__.py": (
            "import os\nimport shutil\nfrom pathlib import Path\n\nHERE = Path(__file__).parent\n\n\n"
            "def save(text):\n    (HERE / 'last.txt').write_text(text)\n\n\n"
            "def log(line):\n    p = os.path.join(os.path.dirname(__file__), 'log.txt')\n"
            "    with open(p, 'a') as fh:\n        fh.write(line)\n\n\n"
            "def cache():\n    target = HERE / 'cache'\n    target.mkdir()\n"
            "    shutil.copy('/tmp/a', target)\n    with target.open(mode='wb') as fh:\n        pass\n"
        )},
        [("__init__.py", "file-write", 9), ("__init__.py", "file-write", 14),
         ("__init__.py", "file-write", 20), ("__init__.py", "file-write", 21),
         ("__init__.py", "file-write", 22)],
    ),
    "sys.path": (
        {
            "__init__.py": (
                "import os\nimport sys\n\nsys.path.append(os.path.dirname(__file__))\n\n\n"
                "def register():\n    sys.path.insert(0, '/opt/x')\n    sys.path[:0] = ['/y']\n"
            ),
            "vendor.py": (
                "import site\nfrom sys import path as P\n\n\ndef load():\n    P.append('/z')\n"
                "    site.addsitedir('/w')\n"
            ),
        },
        [("__init__.py", "sys-path", 4), ("__init__.py", "sys-path", 8), ("__init__.py", "sys-path", 9),
         ("vendor.py", "sys-path", 6), ("vendor.py", "sys-path", 7)],
    ),
    "syntax error": (
        {"__init__.py": "def register(:\n"},
        [("__init__.py", "syntax", 1)],
    ),
}


@pytest.mark.parametrize("name", list(BAD_SAMPLES))
def test_checker_flags_bad_samples(name: str) -> None:
    sources, expected = BAD_SAMPLES[name]
    assert sorted(_rules(sources)) == sorted(expected), "\n".join(map(str, check_sources(sources)))


GOOD_SAMPLE = {
    "__init__.py": '''
import os
import sys
from pathlib import Path

import bpy
from bpy.props import StringProperty
from bpy.types import AddonPreferences, Operator, Panel

from . import registration
from .core import storage

ICONS = Path(__file__).parent / "icons"
_keymaps = []


def _start_bridge():
    bpy.context.window_manager.mediaidx_status = "connecting"
    return None


class Prefs(AddonPreferences):
    bl_idname = __package__
    endpoint: StringProperty(default="tcp://127.0.0.1:5555")
    label: StringProperty(update=lambda self, ctx: bpy.context.scene.frame_set(1))


class OT_Import(Operator):
    bl_idname = "mediaidx.import"
    bl_label = "Import"

    def execute(self, context):
        from bpy import data

        data.movieclips.get("x")
        bpy.ops.clip.open(directory=str(storage.cache_dir()))
        scene = bpy.context.scene
        bpy.data.movieclips.load(os.path.join(str(ICONS), "x.png"))
        with open(ICONS / "list.txt") as fh:
            fh.read()
        return {"FINISHED"}


def register():
    registration.register()
    bpy.utils.register_class(Prefs)
    bpy.types.Scene.mediaidx_shot = StringProperty()
    kc = bpy.context.window_manager.keyconfigs.addon
    prefs = bpy.context.preferences.addons[__package__].preferences
    bpy.app.timers.register(_start_bridge, first_interval=0.1, persistent=True)

    def later():
        return bpy.context.scene

    bpy.app.handlers.load_post.append(later)
    storage.cache_dir()


def unregister():
    del bpy.types.Scene.mediaidx_shot
    bpy.utils.unregister_class(Prefs)
    registration.unregister()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    bpy.ops.wm.read_homefile()
''',
    "registration.py": '''
import bpy

classes = (bpy.types.Panel,)
register, unregister = bpy.utils.register_classes_factory(classes)
''',
    "core/__init__.py": "",
    "core/storage.py": '''
from pathlib import Path

import bpy


def cache_dir() -> Path:
    d = Path(bpy.utils.extension_path_user(__package__.rpartition(".")[0], path="cache", create=True))
    (d / "index.json").write_text("{}")
    return d
''',
}


GOOD_SAMPLE["core/session.py"] = '''
import bpy


class Session:
    def register(self, name):  # not a classmethod: not called by register_class
        return bpy.context.scene.name + name
'''


def test_checker_accepts_good_sample() -> None:
    violations = check_sources(GOOD_SAMPLE)
    assert not violations, "\n".join(map(str, violations))


def test_checker_scans_every_file(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("def register():\n    pass\n")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "late.py").write_text("import bpy\nX = bpy.data.objects\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "junk.py").write_text("import bpy\nX = bpy.data\n")
    assert [(v.path, v.rule) for v in check_sources(package_sources(tmp_path))] == [
        ("deep/er/late.py", "bpy-at-register")
    ]
