"""Mementos' pickled synonym graphs: the published layout (a `__main__.ActionGraph` holding dicts, lists,
sets and defaultdicts) converts to our JSON graph under every pickle protocol; a pickle naming any
other global is refused before anything is imported or called (hypothesis-made hostile pickles)."""

import _compat_pickle
import os
import pickle
import sys
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from imagechain.eval.mementos_pickle import CONTAINERS, GRAPH_CLASSES, convert_pickle, restricted_load
from imagechain.eval.synonyms import SynonymGraph, map_to_reference
from schemas.errors import DataError


class ActionGraph:
    """The Mementos notebook's class, as its pickles name it (__main__.ActionGraph): a graph attribute."""

    def __init__(self):
        self.graph = defaultdict(dict)


ActionGraph.__module__, ActionGraph.__qualname__ = "__main__", "ActionGraph"


@pytest.fixture
def published_class(monkeypatch):
    # Pickle saves a class by reference and checks the reference resolves: make __main__.ActionGraph resolve.
    monkeypatch.setattr(sys.modules["__main__"], "ActionGraph", ActionGraph, raising=False)


def mementos_graph() -> ActionGraph:
    graph = ActionGraph()
    graph.graph["grab"][""] = ["pick up", "grasp"]
    graph.graph["put"]["down"] = ["place"]
    graph.graph["change position"][""] = {"move", "place", "locate"}   # a set: no order of its own
    return graph


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_the_published_layout_converts_under_every_protocol(published_class, tmp_path, protocol):
    path = tmp_path / "robo_action_graph_v1.pkl"
    path.write_bytes(pickle.dumps(mementos_graph(), protocol=protocol))
    graph = convert_pickle(path)
    assert (graph.kind, graph.domain) == ("behaviour", "robo")
    assert graph.graph == {"grab": {"": ["pick up", "grasp"]}, "put": {"down": ["place"]},
                           "change position": {"": ["locate", "move", "place"]}}
    # It works as a graph: "put down" stands for the reference "place"; a saved copy loads back the same.
    assert map_to_reference(["place"], ["put", "down"], graph) == ["place"]
    graph.save(tmp_path / "robo-behaviour.json")
    assert SynonymGraph.load(tmp_path / "robo-behaviour.json").graph == graph.graph


def test_an_object_graph_of_plain_dicts_converts(tmp_path):
    path = tmp_path / "cmc_object_graph_v1.pkl"
    path.write_bytes(pickle.dumps({"mug": {"": ["cup"]}}))
    graph = convert_pickle(path)
    assert (graph.kind, graph.domain, graph.graph) == ("object", "comics", {"mug": {"": ["cup"]}})


class Exploit:
    def __reduce__(self):
        return os.system, (f"touch {Exploit.target}",)


def test_a_pickle_that_would_run_a_command_is_refused_and_runs_nothing(tmp_path):
    Exploit.target = tmp_path / "pwned"
    path = tmp_path / "dl_action_graph_v1.pkl"
    path.write_bytes(pickle.dumps({"grab": {"": [Exploit()]}}))
    with pytest.raises(DataError, match=r"dl_action_graph_v1.pkl: refused to unpickle (posix|nt)\.system"):
        convert_pickle(path)
    assert not Exploit.target.exists()


def test_file_names_and_shapes_are_checked(tmp_path):
    (tmp_path / "graph.pkl").write_bytes(pickle.dumps({}))
    with pytest.raises(DataError, match="not a Mementos graph file name"):
        convert_pickle(tmp_path / "graph.pkl")
    (tmp_path / "robo_object_graph_v1.pkl").write_bytes(pickle.dumps({"mug": {"": "cup"}}))
    with pytest.raises(DataError, match=r"graph\['mug'\]\[''\]: expected a list of words"):
        convert_pickle(tmp_path / "robo_object_graph_v1.pkl")
    (tmp_path / "cmc_action_graph_v1.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a readable graph pickle"):
        convert_pickle(tmp_path / "cmc_action_graph_v1.pkl")


ALLOWED = CONTAINERS | GRAPH_CLASSES
DOTTED = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}(\.[A-Za-z_][A-Za-z0-9_]{0,12}){0,2}", fullmatch=True)
MODULES = st.sampled_from(["os", "posix", "subprocess", "builtins", "sys", "shutil", "importlib", "__main__",
                           "collections", "copyreg", "pickle", "io", "pathlib", "socket", "os.path"]) | DOTTED
NAMES = st.sampled_from(["system", "eval", "exec", "__import__", "getattr", "open", "Popen", "rmtree",
                         "import_module", "loads", "ActionGraphs", "Counter", "_reconstructor_", "remove"]) | DOTTED


def text_pickle(module: str, name: str) -> bytes:
    """Protocol 0: {"graph": module.name()} through the GLOBAL opcode."""
    return f"(dp0\nVgraph\np1\nc{module}\n{name}\n(tRs.".encode()


def framed_pickle(module: str, name: str) -> bytes:
    """Protocol 4: {"graph": module.name()} through STACK_GLOBAL."""
    def short(text: str) -> bytes:
        data = text.encode()
        return b"\x8c" + bytes([len(data)]) + data
    return b"\x80\x04}" + short("graph") + short(module) + short(name) + b"\x93)Rs."


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(module=MODULES, name=NAMES, framed=st.booleans())
def test_any_other_global_is_refused_before_import(tmp_path, module, name, framed):
    # Python 2 names are renamed first, as pickle does (__builtin__.dict is builtins.dict): not "other" globals.
    renamed = _compat_pickle.NAME_MAPPING.get((module, name),
                                              (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
    assume(renamed not in ALLOWED)
    data = framed_pickle(module, name) if framed else text_pickle(module, name)
    modules_before = set(sys.modules)
    with pytest.raises(pickle.UnpicklingError, match=f"^{module}.{name}$".replace(".", r"\.")):
        restricted_load(data)
    assert set(sys.modules) == modules_before          # nothing was imported to look the name up
    path = tmp_path / "robo_action_graph_v1.pkl"
    path.write_bytes(data)
    with pytest.raises(DataError, match=f"refused to unpickle {module}.{name}".replace(".", r"\.")):
        convert_pickle(path)
