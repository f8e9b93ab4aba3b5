"""A local OpenAI-compatible server that plays every generate agent: the edge of the machine.

It answers each request from the JSON Schema the client sends in `response_format` (its name is
the agent: plan, keywords, verdict, paint_prompt, topics), with a fixed latency and an optional share
of faults, so the real graph, backends, cache and checkpointer run against it in tests and in
bench/orchestration.py.

    with AgentServer(latency=0.2, fault_rate=0.2) as server:
        profile = scripted_profile(tmp_dir, server.base_url)   # a profile file: all agents -> this server

Faults, drawn from a seeded RNG: HTTP 500, HTTP 429 with Retry-After, a reply slower than the
client's timeout (`slow_seconds`), and a reply that is not JSON. `reject_every` makes the
validator say no to every k-th retrieved image it sees, so refine rounds happen; `reject_painted`
makes it say no to the first k painted images, so repaints happen. A painted image is told from a
retrieved one by its size: scripted_profile's painter paints PAINTED_SIZE pixels square, and the
search folders (benchmark_data/demo_images, the tests' drawn folder) hold 256-pixel drawings.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from PIL import Image

from benchmark_data import DEMO_IMAGES

FAULTS = ("500", "429", "slow", "malformed")
PAINTED_SIZE = 64
"""Width and height of scripted_profile's paintings: how the validator tells them from retrieved images."""
TOPIC_POOL = (
    "replacing a bicycle chain", "soldering a resistor onto a circuit board", "changing a car tyre",
    "assembling a flat-pack bookshelf", "wiring an electrical plug", "bleeding a home radiator",
    "pouring a concrete slab", "sharpening a kitchen knife", "baking a loaf of bread", "brewing a pot of tea",
    "planting a tomato seedling", "repotting a house plant", "tiling a bathroom wall", "painting a wooden fence",
    "hanging a picture frame", "unclogging a sink drain", "replacing a door hinge", "installing a ceiling fan",
    "sewing on a shirt button", "restringing a guitar", "washing a car by hand", "cleaning a laptop keyboard",
    "installing a memory module in a computer", "setting up a home wifi router", "crimping an ethernet cable",
    "building a birdhouse", "laying a brick wall", "folding a paper crane", "tying a bowline knot",
    "packing a hiking backpack", "pitching a camping tent", "filleting a fish", "making a cup of espresso",
    "replacing a car air filter", "changing a smoke alarm battery", "mounting a television on a wall",
    "grafting a fruit tree branch", "developing black and white film", "framing a stud wall",
    "splicing two electrical wires",
)
"""The topics agent's answers: 40 procedures whose all-MiniLM-L6-v2 embeddings are at most 0.49 alike."""
NEAR_DUPLICATE = "{} step by step"
"""How the topics agent rewords a topic it proposes twice (cosine 0.73 or more with the original)."""


class AgentServer:
    def __init__(self, latency: float = 0.0, fault_rate: float = 0.0, seed: int = 0, reject_every: int = 0,
                 slow_seconds: float = 3.0, reject_painted: int = 0):
        self.latency = latency
        self.fault_rate = fault_rate
        self.reject_every = reject_every
        self.reject_painted = reject_painted
        self.slow_seconds = slow_seconds
        self.rng = random.Random(seed)
        self.answered: Counter = Counter()
        """SHA-256 of each request body answered with 200 -> times answered."""
        self.faults: Counter = Counter()
        self.agents: Counter = Counter()
        self.verdicts: Counter = Counter()
        """Verdicts given on "retrieved" and on "painted" images."""
        self.in_flight = 0
        """Requests received and not yet answered."""
        self.answer_times: list[float] = []
        """time.monotonic() of each answer sent."""
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 256  # 64 clients connecting at once overflow the default 5

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "AgentServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def draw_fault(self) -> str | None:
        with self._lock:
            return self.rng.choice(FAULTS) if self.rng.random() < self.fault_rate else None

    def reply(self, body: dict) -> str:
        schema = body.get("response_format", {}).get("json_schema", {})
        name, schema = schema.get("name"), schema.get("schema", {})
        text = _user_text(body)
        with self._lock:
            self.agents[name] += 1
            self.answered[hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()] += 1
            count = self.agents[name]
        if name == "plan":
            return json.dumps(scripted_plan(schema, text))
        if name == "keywords":
            count = schema["properties"]["slots"]["minItems"]
            return json.dumps({"slots": [{"queries": ["workshop part photo", "tool on a bench"]}] * count})
        if name == "verdict":
            return json.dumps(self._verdict(_image_sizes(body)))
        if name == "paint_prompt":
            return json.dumps({"prompt": scripted_paint_prompt(schema, text)})
        if name == "topics":
            return json.dumps({"topics": scripted_topics(schema, text)})
        return "I am a scripted agent server."

    def _verdict(self, sizes: list[tuple[int, int]]) -> dict:
        kind = "painted" if (PAINTED_SIZE, PAINTED_SIZE) in sizes else "retrieved"
        with self._lock:
            self.verdicts[kind] += 1
            count = self.verdicts[kind]
        if kind == "painted":
            no = count <= self.reject_painted
        else:
            no = self.reject_every and count % self.reject_every == 0
        reason = "scripted verdict on a painting" if kind == "painted" else "scripted verdict"
        return {"verdict": "no" if no else "yes", "reason": reason}


def scripted_paint_prompt(schema: dict, prompt: str) -> str:
    """`photo of <what the image must show>`, cut to the schema's bound; numbered after a rejection."""
    description = next((line.split("It must show: ", 1)[1] for line in prompt.splitlines() if "It must show: " in line),
                       "the object")
    rejected = prompt.count("rejected by the validator")
    text = f"photo of {description}" + (f", take {rejected + 1}" if rejected else "")
    bound = int(re.search(r",(\d+)\}\$$", schema["properties"]["prompt"]["pattern"]).group(1))
    return "".join(ch for ch in text if ch.isalnum() or ch in " ,.")[:bound]


def scripted_plan(schema: dict, prompt: str) -> dict:
    """The smallest plan the request schema admits, in words taken from the prompt's topic."""
    plan = schema["anyOf"][0] if "anyOf" in schema else schema
    props = plan["properties"]
    kind = props["task_kind"]["const"]
    steps_schema = props["steps"]
    images = steps_schema["items"]["properties"]["images"]
    roles = [item["properties"]["role"]["const"] for item in images["prefixItems"]]
    roles += ["distractor"] * (images["minItems"] - len(roles))
    topic = next((line[len("Topic: "):] for line in prompt.splitlines() if line.startswith("Topic: ")), "a task")
    topic = "".join(ch for ch in topic if ch.isalnum() or ch == " ")[:30] or "a task"
    steps = []
    for number in range(1, steps_schema["minItems"] + 1):
        steps.append({"question": f"What comes at step {number}?", "scene_description": f"Step {number} of {topic}.",
                      "images": [{"role": role, "description": f"{role} {number}.{i} for {topic}"}
                                 for i, role in enumerate(roles, start=1)]})
    return {"task_kind": kind, "title": f"Doing {topic}", "initial_scene_description": f"The start of {topic}.",
            "steps": steps}


def scripted_topics(schema: dict, prompt: str) -> list[str]:
    """The pool's topics the prompt has not listed as chosen, each followed by a near-duplicate of
    itself; once the pool is used up, only near-duplicates (so the caller runs out of distinct topics)."""
    count = schema["properties"]["topics"]["minItems"]
    chosen_line = next((line for line in prompt.splitlines() if line.startswith("Topics already chosen")), "")
    chosen = set(chosen_line.split(": ", 1)[1].rstrip(".").split("; ")) if chosen_line else set()
    topics = []
    for topic in (t for t in TOPIC_POOL if t not in chosen):
        topics += [topic, NEAR_DUPLICATE.format(topic)]
    topics += [NEAR_DUPLICATE.format(TOPIC_POOL[i % len(TOPIC_POOL)]) for i in range(count)]
    return topics[:count]


def _image_sizes(body: dict) -> list[tuple[int, int]]:
    """(width, height) of every image the request carries as a data URL."""
    sizes = []
    for message in body.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            url = part.get("image_url", {}).get("url", "") if part.get("type") == "image_url" else ""
            if url.startswith("data:"):
                sizes.append(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size)
    return sizes


def _user_text(body: dict) -> str:
    parts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text", "") for p in content if p.get("type") == "text"]
    return "\n".join(parts)


class _Handler(BaseHTTPRequestHandler):
    server_state: AgentServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the body then waits for the
    # client's delayed ACK, 40 ms on Linux, which would swamp a 200 ms latency budget.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        state = self.server_state
        with state._lock:
            state.in_flight += 1
        try:
            self._answer(state, body)
        finally:
            with state._lock:
                state.in_flight -= 1
                state.answer_times.append(time.monotonic())

    def _answer(self, state: AgentServer, body: dict) -> None:
        fault = state.draw_fault()
        if fault:
            state.faults[fault] += 1
        time.sleep(state.latency + (state.slow_seconds if fault == "slow" else 0))
        if fault == "500":
            return self._send(500, {"error": {"message": "injected 500"}})
        if fault == "429":
            return self._send(429, {"error": {"message": "injected 429"}}, {"Retry-After": "0"})
        if fault == "slow":  # the client has timed out and gone; this reply is never read
            return self._send(503, {"error": {"message": "too late"}})
        text = "{not json at all" if fault == "malformed" else state.reply(body)
        self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 10}})

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        send_json(self, status, payload, headers)


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict | None = None) -> None:
    """One JSON response with its length, so the connection stays open for the next request."""
    data = json.dumps(payload).encode()
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    try:
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client timed out and left




def scripted_profile(folder: Path, base_url: str, *, refine_rounds: int = 1, timeout: float = 2.0,
                     retries: int = 6, images: Path = DEMO_IMAGES, concurrency: int = 32,
                     candidates_per_slot: int = 2) -> Path:
    """A profile file whose three agents are the AgentServer at `base_url`; tiny SD paints."""
    agent = {"model": "scripted", "backend": "openai", "base_urls": [base_url], "timeout": timeout,
             "retries": retries, "concurrency": concurrency}
    profile = {
        "description": "scripted agents on a local server",
        "models": {"planner": agent, "keywords": agent, "validator": agent},
        "painter": {"model": "tiny:sd", "steps": 1, "size": PAINTED_SIZE},
        "search": {"providers": ["folder"], "folder": str(images)},
        "generate": {"refine_rounds": refine_rounds, "repair_attempts": 2, "candidates_per_slot": candidates_per_slot,
                     "planner_may_reject": False, "max_new_tokens": 512},
    }
    path = folder / "scripted.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path



def main() -> None:
    """`python agents/backends/scripted_server.py --latency 0.2`: serve until killed; prints the base URL first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds before each answer")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests that fail")
    args = parser.parse_args()
    with AgentServer(latency=args.latency, fault_rate=args.fault_rate) as server:
        print(server.base_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
