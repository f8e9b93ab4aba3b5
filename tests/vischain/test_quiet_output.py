"""Quiet output: `make demo`'s two commands print our lines only, and the filters behind that are narrow."""

import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

from vischain.quiet import LOG_NOISE, quiet_known_noise

VISCHAIN = Path(sys.executable).parent / "vischain"
LIBRARY_NOISE = re.compile(r"Warning\b|\[transformers\]|\[diffusers\]|site-packages|deprecat", re.IGNORECASE)


def test_make_demo_prints_no_library_warning(tmp_path, tiny_models):
    run = tmp_path / "demo"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    commands = [["generate", "--domain", "engineering", "--profile", "demo", "--tasks", "3", "--out", str(run)],
                ["validate", str(run)]]
    outputs = []
    for args in commands:  # exactly `make demo`'s commands
        done = subprocess.run([str(VISCHAIN), *args], env=env, capture_output=True, text=True, timeout=280)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stderr.strip() == "", done.stderr  # nothing but our own output, which goes to stdout
        outputs.append(done.stdout)
    noise = [line for out in outputs for line in out.splitlines() if LIBRARY_NOISE.search(line)]
    assert noise == []
    assert "vischain generate" in outputs[0] and "valid: 3 task(s)" in outputs[1]


def test_only_the_listed_messages_are_dropped_and_verbose_skips_the_filters():
    quiet_known_noise()
    quiet_known_noise()  # twice: still one filter per logger
    noise = LOG_NOISE[0]
    logger = logging.getLogger(noise.logger)
    assert sum(type(f).__name__ == "_Drop" for f in logger.filters) == 1
    harmless = logger.makeRecord(noise.logger, logging.WARNING, __file__, 1,
                                 "`CLIPImageProcessor` requires torchvision (not installed); falling back to "
                                 "`CLIPImageProcessorPil`", None, None)
    other = logger.makeRecord(noise.logger, logging.WARNING, __file__, 1, "something new went wrong", None, None)
    assert not logger.filter(harmless) and logger.filter(other)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_noise()  # inside catch_warnings: the filters installed here are what is tested
        warnings.warn("`torch_dtype` is deprecated and will be removed in version 1.0.0. Use `dtype`.", FutureWarning)
        warnings.warn("some other future change", FutureWarning)
    assert [str(w.message) for w in caught] == ["some other future change"]


def test_verbose_is_an_option_of_the_vischain_app():
    done = subprocess.run([str(VISCHAIN), "--verbose", "validate", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "validate" in done.stdout
