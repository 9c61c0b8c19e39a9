"""Model backends, one module per family. They are registered by import path in
:mod:`mmserve.models` and imported (with torch) only when first used.

:mod:`.clip`, :mod:`.sentence` (encoders), :mod:`.blip` (captioning, VQA), :mod:`.vilt` (VQA),
:mod:`.diffusion` (generation, editing), :mod:`.causal_lm`, :mod:`.openai_chat` (LLMs),
:mod:`.fake`, :mod:`.fake_llm` (weight-free, for tests).
"""
