"""Makes llama.cpp crash the way a broken CPU kernel does, for tests: put this folder on the
PYTHONPATH of a process (the model worker, the self-test's children) with
HEARTH_TEST_LLAMA_FAULT set.

- "SIGSEGV" or "SIGILL": the first `llama_decode` of a model loaded with llama.cpp's extra
  buffer types (its AMX and repacked kernels, on by default) kills the process with that
  signal, as llama.cpp's AMX kernel does on Sapphire Rapids (issue #20824). A model loaded on
  plain kernels (`use_extra_bufts` off) decodes as usual.
- "always:SIGSEGV" (or another signal): every decode crashes, plain kernels too.

The signal is real (the process dies of it, as a native fault would end it); only its cause
is made up. Nothing happens without the variable.
"""

import os

_FAULT = os.environ.get("HEARTH_TEST_LLAMA_FAULT", "")

if _FAULT:
    import signal

    import llama_cpp
    import llama_cpp.llama_cpp as _native

    _every = _FAULT.startswith("always:")
    _signal = getattr(signal, _FAULT.split(":")[-1])
    _fast = [True]
    _load = _native.llama_model_load_from_file
    _decode = _native.llama_decode

    def _load_from_file(path, params):  # type: ignore[no-untyped-def]
        _fast[0] = bool(params.use_extra_bufts)
        return _load(path, params)

    def _crashing_decode(ctx, batch):  # type: ignore[no-untyped-def]
        if _every or _fast[0]:
            os.kill(os.getpid(), _signal)
        return _decode(ctx, batch)

    for _module in (_native, llama_cpp):
        _module.llama_model_load_from_file = _load_from_file
        _module.llama_decode = _crashing_decode
