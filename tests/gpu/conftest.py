"""The GPU code path, run by scripts/test with llama.cpp's Vulkan build on PYTHONPATH and
Mesa's software Vulkan device (lavapipe) made visible with GGML_VK_VISIBLE_DEVICES=0.

With the default (CPU) build these tests are skipped; HEARTH_REQUIRE_GPU=<backend> (set by
scripts/test) turns "no such device" into a failure, so the run that is meant to touch the
GPU code path cannot pass without touching it."""

from __future__ import annotations

import os

import pytest

from engine import hardware, llama_build


@pytest.fixture(scope="session")
def gpu() -> hardware.GPU:
    required = os.environ.get("HEARTH_REQUIRE_GPU", "")
    hw = hardware.detect(llama_build.build_info())
    found = [g for g in hw.usable_gpus if not required or g.backend == required]
    if not found:
        why = f"no {required or 'GPU'} device in this build of llama.cpp ({hw.gpu_backend})"
        if required:
            pytest.fail(why)
        pytest.skip(why)
    return found[0]
