"""``tiny://<arch>``: tiny randomly initialised models of the real architectures, built offline.

Each is a real ``transformers`` model (hidden size 32, 2 layers, 32-pixel images) with its
tokenizer and image processor, seeded so that every build is identical, saved with
``save_pretrained`` and then loaded by the same ``from_pretrained`` code as a real model.
They make every code path runnable with no network and no GPU; their outputs are noise.

Builds are cached in ``$MMSERVE_CACHE/tiny/<arch>-<version>`` (default
``~/.cache/mmserve``). A build happens in a temporary folder next to the final one and is
moved into place with one atomic ``os.rename``, so processes racing to build the same model
(two Ray replicas, say) never see a half-written folder: the loser discards its copy.

Tokenizers come from :mod:`.offline_tokenizers` (no download either).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mmserve.errors import ModelLoadError
from mmserve.models.sources.tokenizers import bert_tokenizer, clip_tokenizer, qwen2_tokenizer

#: Bump when a builder changes, so stale caches are never reused.
BUILD_VERSION = "v2"
SEED = 1234
IMAGE_SIZE = 32
#: Wider than the usual 0.02 so that tiny outputs visibly depend on their inputs, which
#: lets tests catch batching bugs (with 0.02 every image gets nearly the same caption).
INIT_RANGE = 0.3
_HIDDEN = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "initializer_range": INIT_RANGE,
}
_HEADS = 4

#: The answer vocabulary of the tiny ViLT classifier.
VQA_ANSWERS: tuple[str, ...] = (
    "yes",
    "no",
    *(str(n) for n in range(11)),
    *("red", "green", "blue", "yellow", "black", "white", "gray", "orange", "purple", "brown"),
    *("cat", "dog", "person", "car", "tree", "sky", "water", "food"),
)


def cache_root() -> Path:
    """The mmserve cache folder: ``$MMSERVE_CACHE`` or ``~/.cache/mmserve``."""
    configured = os.environ.get("MMSERVE_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "mmserve"


def _vision(**extra: Any) -> dict[str, Any]:
    return {
        **_HIDDEN,
        "num_attention_heads": _HEADS,
        "image_size": IMAGE_SIZE,
        "patch_size": 8,
        **extra,
    }


def _build_clip(dest: Path) -> None:
    from transformers import (  # deferred: pulls in transformers
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPProcessor,
    )

    tokenizer = clip_tokenizer()
    eos = tokenizer.eos_token_id
    text = {**_HIDDEN, "num_attention_heads": _HEADS, "vocab_size": len(tokenizer)}
    text |= {"max_position_embeddings": 77, "bos_token_id": tokenizer.bos_token_id}
    text |= {"eos_token_id": eos, "pad_token_id": tokenizer.pad_token_id}
    config = CLIPConfig(text_config=text, vision_config=_vision(), projection_dim=32)
    config.initializer_factor = INIT_RANGE / 0.02
    CLIPModel(config).save_pretrained(dest)
    size = {"shortest_edge": IMAGE_SIZE}
    crop = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    processor = CLIPImageProcessorPil(size=size, crop_size=crop)
    CLIPProcessor(image_processor=processor, tokenizer=tokenizer).save_pretrained(dest)


def _blip_config(tokenizer: Any) -> Any:
    from transformers import BlipConfig  # deferred: pulls in transformers

    text = {**_HIDDEN, "num_attention_heads": _HEADS, "vocab_size": len(tokenizer)}
    text |= {"encoder_hidden_size": 32, "max_position_embeddings": 64}
    text |= {"bos_token_id": tokenizer.bos_token_id, "pad_token_id": tokenizer.pad_token_id}
    text |= {"sep_token_id": tokenizer.sep_token_id}
    config = BlipConfig(text_config=text, vision_config=_vision(), projection_dim=32)
    config.initializer_range = INIT_RANGE
    return config


def save_blip(model: Any, tokenizer: Any, dest: Path, image_size: int = IMAGE_SIZE) -> None:
    """Save a BLIP model with its processor (square ``image_size`` inputs)."""
    from transformers import BlipImageProcessorPil, BlipProcessor  # deferred: pulls in transformers

    model.save_pretrained(dest)
    size = {"height": image_size, "width": image_size}
    images = BlipImageProcessorPil(size=size)
    BlipProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(dest)


def _build_blip_caption(dest: Path) -> None:
    from transformers import BlipForConditionalGeneration  # deferred: pulls in transformers

    tokenizer = bert_tokenizer(max_length=64, decoder_bos=True)
    save_blip(BlipForConditionalGeneration(_blip_config(tokenizer)), tokenizer, dest)


def _build_blip_vqa(dest: Path) -> None:
    from transformers import BlipForQuestionAnswering  # deferred: pulls in transformers

    tokenizer = bert_tokenizer(max_length=64, decoder_bos=True)
    save_blip(BlipForQuestionAnswering(_blip_config(tokenizer)), tokenizer, dest)


def _build_vilt_vqa(dest: Path) -> None:
    from transformers import (  # deferred: pulls in transformers
        ViltConfig,
        ViltForQuestionAnswering,
        ViltImageProcessorPil,
        ViltProcessor,
    )

    tokenizer = bert_tokenizer(max_length=40, decoder_bos=False)
    config = ViltConfig(
        **_vision(),
        vocab_size=len(tokenizer),
        max_position_embeddings=40,
        id2label=dict(enumerate(VQA_ANSWERS)),
        label2id={answer: index for index, answer in enumerate(VQA_ANSWERS)},
    )
    ViltForQuestionAnswering(config).save_pretrained(dest)
    # size_divisor must not exceed the shortest edge or thin images round down to 0 pixels.
    options: dict[str, Any] = {"size": {"shortest_edge": IMAGE_SIZE}, "size_divisor": 8}
    images = ViltImageProcessorPil(**options)
    ViltProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(dest)


def _build_qwen2(dest: Path) -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM  # deferred: pulls in transformers

    tokenizer = qwen2_tokenizer()
    options: dict[str, Any] = dict(_HIDDEN)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        num_attention_heads=_HEADS,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        **options,
    )
    Qwen2ForCausalLM(config).save_pretrained(dest)
    tokenizer.save_pretrained(dest)


BUILDERS: dict[str, Callable[[Path], None]] = {
    "clip": _build_clip,
    "blip-caption": _build_blip_caption,
    "blip-vqa": _build_blip_vqa,
    "vilt-vqa": _build_vilt_vqa,
    "qwen2": _build_qwen2,
}


def seeded_build(build: Callable[[Path], None], dest: Path) -> None:
    """Run ``build(dest)`` with torch's global RNG seeded, restoring the caller's RNG after."""
    import torch  # deferred: pulls in torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        build(dest)


#: Builds within one process take turns: they seed torch's one global RNG, so two at once
#: (two threads) would interleave their draws and lose determinism.
_BUILD_LOCK = threading.Lock()


def cached_build(folder: Path, build: Callable[[Path], None], *, source: str) -> Path:
    """``folder``, built by ``build`` first unless it exists; atomic (see the module docs)."""
    if folder.is_dir():
        return folder
    with _BUILD_LOCK:
        return _build_into(folder, build, source=source)


def _build_into(folder: Path, build: Callable[[Path], None], *, source: str) -> Path:
    if folder.is_dir():  # built by another thread while this one waited
        return folder
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as exc:
        raise ModelLoadError(
            source=source,
            reason=f"cannot write the model cache {str(folder.parent)!r}: {exc}",
            hint="set MMSERVE_CACHE to a writable folder",
        ) from exc
    try:
        os.chmod(scratch, 0o755)  # mkdtemp's 0700 would hide the cache from other users
        seeded_build(build, scratch)
        os.rename(scratch, folder)
    except OSError as exc:
        if not folder.is_dir():  # a real failure, not a race lost to another builder
            raise ModelLoadError(source=source, reason=f"building the model failed: {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def scheme_model_path(
    scheme: str,
    arch: str,
    builders: Mapping[str, Callable[[Path], None]],
    *,
    source: str | None = None,
) -> Path:
    """The cached folder of ``<scheme>://<arch>`` built by ``builders[arch]``, built if needed."""
    source = source or f"{scheme}://{arch}"
    if arch not in builders:
        raise ModelLoadError(
            source=source,
            reason=f"unknown {scheme} architecture {arch!r}",
            hint=f"{scheme} models: {', '.join(f'{scheme}://' + name for name in builders)}",
        )
    folder = cache_root() / scheme / f"{arch}-{BUILD_VERSION}"
    return cached_build(folder, builders[arch], source=source)


def tiny_model_path(arch: str, *, source: str | None = None) -> Path:
    """The cached folder of ``tiny://<arch>``, building it first if needed."""
    return scheme_model_path("tiny", arch, BUILDERS, source=source)


__all__ = [
    "BUILDERS",
    "BUILD_VERSION",
    "VQA_ANSWERS",
    "cache_root",
    "cached_build",
    "save_blip",
    "seeded_build",
    "tiny_model_path",
]
