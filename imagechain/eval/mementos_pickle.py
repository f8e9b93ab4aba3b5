"""Mementos' pickled synonym graphs as our JSON graphs, read without running the pickle's code.

Mementos ships its graphs as `sym_graphs/{cmc,dl,robo}_{action,object}_graph_v1.pkl`: each an
instance of the notebook's own class `__main__.ActionGraph` whose state holds the graph, a mapping
`graph[word][next] -> [reference words]` built from plain dicts, lists and sets (sometimes
`collections.defaultdict`). Unpickling normally imports and calls whatever the file names, so a
pickle from elsewhere could run anything. `RestrictedUnpickler` resolves only:
- the plain containers and their constructors: dict, list, set, frozenset, tuple, str, int, float,
  bool, `collections.defaultdict` and `collections.OrderedDict`, and `copyreg._reconstructor` with
  `object` (how protocols 0 and 1 rebuild an instance of an allowed class);
- `__main__.ActionGraph` and `__main__.ObjectGraph`, as an inert `PickledGraph` that only keeps
  the pickled state; the author's class is never imported or called.
Any other module or name is refused before it is imported: `DataError` naming the file and the
global (e.g. `posix.system`).

    graph = convert_pickle("sym_graphs/robo_action_graph_v1.pkl")   # SynonymGraph(kind="behaviour", domain="robo")
    graph.save("runs/mementos-synonyms/robo-behaviour.json")
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

from imagechain.data.mementos import DOMAIN_BY_PREFIX
from imagechain.eval.synonyms import SynonymGraph
from schemas.errors import DataError

CONTAINERS = {("builtins", name) for name in ("dict", "list", "set", "frozenset", "tuple", "str", "int", "float",
                                              "bool", "object")}
CONTAINERS |= {("collections", "defaultdict"), ("collections", "OrderedDict"), ("copyreg", "_reconstructor")}
GRAPH_CLASSES = {("__main__", "ActionGraph"), ("__main__", "ObjectGraph")}
FILE_NAME = re.compile(r"^(?P<prefix>cmc|dl|robo)_(?P<kind>action|object)_graph\w*\.pkl$")
KIND_BY_FILE = {"action": "behaviour", "object": "object"}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a module attribute outside the allow-list."""


class PickledGraph:
    """What an allowed `__main__` graph object becomes: its pickled state, nothing of its class."""

    state = None

    def __init__(self, *args, **kwargs):
        pass  # an instance rebuilt by a constructor call keeps nothing of the call

    def __setstate__(self, state):
        self.state = state


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        written = f"{module}.{name}"  # what the file says, for the error
        # Protocols 0-2 store Python 2 names (__builtin__.dict, copy_reg._reconstructor); map them to
        # today's names as pickle itself does, so the allow-list speaks of one set of names. (The C
        # unpickler does not tell us the protocol; a Python 3 pickle never holds these names anyway.)
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, name) in GRAPH_CLASSES:
            return PickledGraph
        if (module, name) in CONTAINERS:
            return super().find_class(module, name)
        raise RefusedGlobal(written)


def restricted_load(data: bytes):
    """The object a pickle holds, unpickled with only the allowed globals (RefusedGlobal otherwise)."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def graph_mapping(obj, where: str) -> Mapping:
    """The `graph[word][next] -> words` mapping inside an unpickled graph file."""
    if isinstance(obj, Mapping):
        return obj
    if not isinstance(obj, PickledGraph):
        raise DataError(f"{where}: expected a graph object or a mapping, found {type(obj).__name__}")
    state = obj.state[0] if isinstance(obj.state, tuple) and obj.state else obj.state  # (dict, slots) form
    if not isinstance(state, Mapping):
        raise DataError(f"{where}: the graph object carries no attributes")
    if isinstance(state.get("graph"), Mapping):
        return state["graph"]
    mappings = [name for name, value in state.items() if isinstance(value, Mapping)]
    if len(mappings) != 1:
        raise DataError(f"{where}: cannot tell which attribute holds the graph: {', '.join(map(str, state)) or 'none'}")
    return state[mappings[0]]


def to_synonym_graph(mapping: Mapping, kind: str, domain: str, where: str) -> SynonymGraph:
    """Our graph of a Mementos mapping; every word must be a string and every target list a list of them."""
    graph: dict[str, dict[str, list[str]]] = {}
    for word, nexts in mapping.items():
        if not isinstance(word, str) or not isinstance(nexts, Mapping):
            raise DataError(f"{where}: graph[{word!r}]: expected a word mapping next words to word lists")
        graph[word] = {}
        for following, goals in nexts.items():
            if not isinstance(following, str) or not isinstance(goals, (list, tuple, set, frozenset)) \
                    or not all(isinstance(goal, str) for goal in goals):
                raise DataError(f"{where}: graph[{word!r}][{following!r}]: expected a list of words")
            # A set has no order of its own; sorting it makes the JSON the same on every run.
            graph[word][following] = sorted(goals) if isinstance(goals, (set, frozenset)) else list(goals)
    return SynonymGraph(graph=graph, kind=kind, domain=domain)


def convert_pickle(path: str | Path) -> SynonymGraph:
    """A Mementos graph pickle (named `{cmc,dl,robo}_{action,object}_graph*.pkl`) as a SynonymGraph."""
    path = Path(path)
    match = FILE_NAME.match(path.name)
    if match is None:
        raise DataError(f"{path}: not a Mementos graph file name ({{cmc,dl,robo}}_{{action,object}}_graph_v1.pkl)")
    try:
        obj = restricted_load(path.read_bytes())
    except RefusedGlobal as err:
        raise DataError(f"{path}: refused to unpickle {err}: only plain containers and "
                        "__main__.ActionGraph/ObjectGraph are allowed") from None
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as err:  # a damaged or hostile pickle fails in many ways; all of them are bad input
        raise DataError(f"{path}: not a readable graph pickle: {type(err).__name__}: {err}") from None
    domain = DOMAIN_BY_PREFIX[match["prefix"]].key
    return to_synonym_graph(graph_mapping(obj, str(path)), KIND_BY_FILE[match["kind"]], domain, str(path))


def graph_file_name(graph: SynonymGraph) -> str:
    """Where `imagechain data convert-synonyms` writes a graph, and where a Mementos recipe's cue_f1.graphs
    folder is read: `<domain>-<kind>.json`."""
    return f"{graph.domain}-{graph.kind}.json"
