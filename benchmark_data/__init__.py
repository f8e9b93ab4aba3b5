"""Data shipped with vischain: domains, profiles, demo images and a small example run.

Code finds them through these paths, never through paths relative to its own file.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
DOMAINS_DIR = ROOT / "domains"
"""One YAML per domain: seed topics per task kind and the kind mix."""
PROFILES_DIR = ROOT / "profiles"
"""One YAML per profile: models, search providers, licences and limits."""
DEMO_IMAGES = ROOT / "demo_images"
"""24 CC0 drawings with a licenses.jsonl: the demo profile's search folder."""
EXAMPLE_RUN = ROOT / "example_run"
"""A small valid run folder, one task of each kind."""
