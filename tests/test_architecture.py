"""The package's shape, checked from its source: no import cycles, citations a reader can open,
no side effects at import, and the environment read only where it is meant to be.

The import graph counts *every* import statement — at module level, inside functions and under
``if TYPE_CHECKING:`` — because each of them is a dependency a reader has to follow; a cycle
hidden behind a lazy import is still a cycle. ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg``.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "switchboard"
_MODULE_SUFFIXES = (".py", ".pyi", ".so", ".pyd")


def _module_files() -> dict[str, Path | None]:
    """Every module name under ``switchboard`` → its Python source (None for compiled ones)."""
    modules: dict[str, Path | None] = {}
    for path in PACKAGE.rglob("*"):
        if path.suffix not in _MODULE_SUFFIXES or "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(SRC).parts)
        parts[-1] = parts[-1].split(".", 1)[0]
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if path.suffix == ".py":
            modules[name] = path
        else:
            modules.setdefault(name, None)
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path | None]) -> set[str]:
    """The package modules ``name`` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.append(submodule if submodule in modules else source)
        found.update(t for t in targets if t in modules and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports."""
    modules = _module_files()
    return {
        name: _imports(name, path, modules) for name, path in modules.items() if path is not None
    }


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
    return cycles


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_import_graph_sees_lazy_and_type_checking_imports() -> None:
    graph = import_graph()
    # connection imports responses at module level; cli imports the loadtest inside a function
    assert (
        "switchboard.emulators.openai_realtime.responses"
        in graph["switchboard.emulators.openai_realtime.connection"]
    )
    assert "switchboard.loadtest" in graph["switchboard.cli"]


def test_no_import_cycles() -> None:
    assert import_cycles(import_graph()) == []


def _text_files() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".so",):
            yield path


def test_no_references_a_reader_cannot_follow() -> None:
    """No out-of-repository notes, no paths of the machine the code was written on."""
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    offenders = [
        f"{path.relative_to(ROOT)}: {needle}"
        for path in [*_text_files(), *documents]
        for needle in ("protocols.md", "/work/", "offline-speech.md", "shared/design.md")
        if needle in path.read_text("utf-8", errors="replace")
    ]
    assert offenders == []


_DOC_CITATION = re.compile(r"docs/([\w./-]+\.md)(?:#([\w-]+))?")


def _anchors(markdown: Path) -> set[str]:
    """GitHub-style heading anchors of a markdown file."""
    anchors = set()
    for line in markdown.read_text("utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_doc_citations_in_src_resolve() -> None:
    """Every ``docs/….md#section`` named in the source exists, section included."""
    broken = []
    cited = 0
    for path in _text_files():
        for match in _DOC_CITATION.finditer(path.read_text("utf-8", errors="replace")):
            cited += 1
            doc, anchor = ROOT / "docs" / match.group(1), match.group(2)
            if not doc.is_file() or (anchor and anchor not in _anchors(doc)):
                broken.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert broken == []
    assert cited >= 20  # the wire notes are actually cited


def test_wire_notes_cite_vendor_pages() -> None:
    """Each wire note names public vendor pages for its facts."""
    for note in sorted((ROOT / "docs" / "wire").glob("*.md")):
        text = note.read_text("utf-8")
        assert text.count("https://") >= 5, note.name


def test_load_settings_is_called_only_at_the_edges() -> None:
    """The environment is read by the CLI (and its demo command) and by the documented default
    of ``get_provider_registry()``; library code, emulators and the load tool take values."""
    allowed = {"cli.py", "demo.py", "providers/registry.py", "config.py"}
    callers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == "load_settings":
                    callers.add(path.relative_to(PACKAGE).as_posix())
    assert callers <= allowed, callers - allowed


_IMPORT_EVERYTHING = """
import importlib, json, logging, os, pkgutil, sys

def logging_state():
    loggers = [logging.getLogger()] + [
        logging.getLogger(n) for n in sorted(logging.Logger.manager.loggerDict)
    ]
    return {
        lg.name: [lg.level, [type(f).__name__ for f in lg.filters], len(lg.handlers)]
        for lg in loggers
        if isinstance(lg, logging.Logger)
    }

import switchboard
modules = [m.name for m in pkgutil.walk_packages(switchboard.__path__, "switchboard.")
           if not m.name.startswith("switchboard.store.migrations")]
before_env = dict(os.environ)
for name in modules:
    importlib.import_module(name)
state = logging_state()
print(json.dumps({
    "modules": len(modules),
    "filtered": {k: v for k, v in state.items() if v[1] or v[2]},
    "env_changed": sorted(k for k in set(before_env) | set(os.environ)
                          if before_env.get(k) != os.environ.get(k)),
}))
"""


def test_importing_the_package_changes_no_global_state() -> None:
    """Importing every module adds no logging filter or handler and writes no environment
    variable: redaction is installed by ``configure_logging``/``serve``, not by ``import``."""
    run = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["modules"] > 100
    assert report["filtered"] == {}
    assert report["env_changed"] == []


#: The layers, bottom first (docs/architecture.md#layers). A module may import its own layer and
#: the layers below, never one above. Each entry is a package or module; a module belongs to the
#: longest entry that is a prefix of its name (``telephony.dialplan`` is pure and sits below the
#: ``config`` that reads it, the rest of ``telephony`` above).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kernel", ("errors", "media", "__about__")),
    ("foundations", ("audio", "catalog", "security", "logs", "ratelimit", "runtime", "tools",
                     "telephony.dialplan", "queues", "flags")),
    ("settings", ("config", "cost")),
    ("services", ("providers", "telephony", "store", "cluster", "emulators", "integrations",
                  "recordings")),
    # "" is the package's public API (__init__); the sink protocol the bridge reports through is
    # a unit of its own, as metrics and tracing implement it and the bridge imports them
    ("call", ("agents", "metrics", "tracing", "gateway", "bridge", "bridge.sink", "live", "")),
    ("app", ("app", "server", "workers", "loadtest", "console")),
    ("cli", ("cli", "demo")),
)  # fmt: skip


def layer_unit(module: str) -> tuple[int, str]:
    """``(rank, entry)`` of a ``switchboard…`` module: its layer's index and its LAYERS entry."""
    name = module.removeprefix("switchboard").removeprefix(".")
    best: tuple[int, str] | None = None
    for rank, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            matches = name == entry or (entry != "" and name.startswith(entry + "."))
            if matches and (best is None or len(entry) > len(best[1])):
                best = (rank, entry)
    if best is None:
        raise KeyError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
    return best


def test_layer_unit_prefers_the_longest_entry() -> None:
    assert layer_unit("switchboard.telephony.dialplan") == (1, "telephony.dialplan")
    assert layer_unit("switchboard.telephony.twilio.rest") == (3, "telephony")
    assert layer_unit("switchboard") == (4, "")
    assert layer_unit("switchboard.media") == (0, "media")


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for name in import_graph():
        try:
            layer_unit(name)
        except KeyError:
            unplaced.append(name)
    assert unplaced == []


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a module to one in a higher layer, as ``a (layer) -> b (layer)``."""
    found = []
    for name, targets in sorted(graph.items()):
        rank = layer_unit(name)[0]
        for target in sorted(targets):
            if layer_unit(target)[0] > rank:
                found.append(
                    f"{name} ({LAYERS[rank][0]}) -> {target} ({LAYERS[layer_unit(target)[0]][0]})"
                )
    return found


def unit_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The import graph between LAYERS entries (packages, or the modules listed alone)."""
    units: dict[str, set[str]] = {}
    for name, targets in graph.items():
        unit = layer_unit(name)[1]
        units.setdefault(unit, set()).update(
            layer_unit(t)[1] for t in targets if layer_unit(t)[1] != unit
        )
    return units


def test_the_layer_checks_find_what_they_forbid() -> None:
    # the arrow this check exists to keep out: audio importing the provider contract
    graph = {
        "switchboard.audio.convert": {"switchboard.providers.base", "switchboard.media"},
        "switchboard.providers.registry": {"switchboard.telephony.base"},
        "switchboard.telephony.base": {"switchboard.providers.base"},
        "switchboard.providers.base": {"switchboard.media"},
    }
    assert upward_imports(graph) == [
        "switchboard.audio.convert (foundations) -> switchboard.providers.base (services)"
    ]
    assert import_cycles(unit_graph(graph)) == [["providers", "telephony"]]


def test_no_import_reaches_up_a_layer() -> None:
    """The media vocabulary is at the bottom; providers, carriers and the store never import the
    bridge, the bridge never imports the app, the app never imports the CLI."""
    assert upward_imports(import_graph()) == []


def test_no_two_packages_import_each_other() -> None:
    """Within a layer, packages still depend one way: ``providers`` may import ``telephony``
    (the seed's ``create_telephony_adapter``) only because ``telephony`` never imports it."""
    assert import_cycles(unit_graph(import_graph())) == []
