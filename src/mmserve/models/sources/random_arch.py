"""``random://<arch>``: full-size architectures with random weights, for benchmarks.

The configs are the published ones of the named checkpoints, so a forward pass costs what
the real model costs, without downloading its weights. Outputs are noise. The tokenizers are
the tiny models' (see :mod:`.offline_tokenizers`): token ids stay within every vocab, and the
number of tokens per text -- what the cost depends on -- is close to the real tokenizers'.

Built once into ``$MMSERVE_CACHE/random/<arch>-<version>`` (hundreds of MB each).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmserve.models.sources.tiny import save_blip, scheme_model_path
from mmserve.models.sources.tokenizers import bert_tokenizer, clip_tokenizer

#: The answer vocabulary size of dandelin/vilt-b32-finetuned-vqa (VQAv2's 3,129 answers).
VILT_VQA_LABELS = 3129


def _build_clip_vit_b32(dest: Path) -> None:
    """openai/clip-vit-base-patch32: ViT-B/32 at 224 px, 12-layer 512-wide text tower."""
    from transformers import (  # deferred: pulls in transformers
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPProcessor,
    )

    tokenizer = clip_tokenizer()
    text = {
        "vocab_size": 49408,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision = {"patch_size": 32, "image_size": 224}
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=512)
    CLIPModel(config).save_pretrained(dest)
    CLIPProcessor(image_processor=CLIPImageProcessorPil(), tokenizer=tokenizer).save_pretrained(
        dest
    )


def _blip_base_config(tokenizer: Any) -> Any:
    """Salesforce/blip-*-base: ViT-B/16 at 384 px, 12-layer BERT-base text model."""
    from transformers import BlipConfig  # deferred: pulls in transformers

    text = {"bos_token_id": tokenizer.bos_token_id, "sep_token_id": tokenizer.sep_token_id}
    vision = {"image_size": 384, "patch_size": 16, "initializer_range": 0.02}
    return BlipConfig(text_config=text, vision_config=vision, projection_dim=512)


def _build_blip_base(dest: Path) -> None:
    from transformers import BlipForConditionalGeneration  # deferred: pulls in transformers

    tokenizer = bert_tokenizer(max_length=512, decoder_bos=True)
    save_blip(BlipForConditionalGeneration(_blip_base_config(tokenizer)), tokenizer, dest, 384)


def _build_blip_vqa_base(dest: Path) -> None:
    from transformers import BlipForQuestionAnswering  # deferred: pulls in transformers

    tokenizer = bert_tokenizer(max_length=512, decoder_bos=True)
    save_blip(BlipForQuestionAnswering(_blip_base_config(tokenizer)), tokenizer, dest, 384)


def _build_vilt_b32_vqa(dest: Path) -> None:
    """dandelin/vilt-b32-finetuned-vqa: ViLT-B/32 with a 3,129-answer classifier."""
    from transformers import (  # deferred: pulls in transformers
        ViltConfig,
        ViltForQuestionAnswering,
        ViltImageProcessorPil,
        ViltProcessor,
    )

    tokenizer = bert_tokenizer(max_length=40, decoder_bos=False)
    labels = {index: f"answer-{index}" for index in range(VILT_VQA_LABELS)}
    config = ViltConfig(id2label=labels, label2id={v: k for k, v in labels.items()})
    ViltForQuestionAnswering(config).save_pretrained(dest)
    processor = ViltProcessor(image_processor=ViltImageProcessorPil(), tokenizer=tokenizer)
    processor.save_pretrained(dest)


BUILDERS: dict[str, Callable[[Path], None]] = {
    "clip-vit-b32": _build_clip_vit_b32,
    "blip-base": _build_blip_base,
    "blip-vqa-base": _build_blip_vqa_base,
    "vilt-b32-vqa": _build_vilt_b32_vqa,
}


def random_model_path(arch: str, *, source: str | None = None) -> Path:
    """The cached folder of ``random://<arch>``, building it first if needed."""
    return scheme_model_path("random", arch, BUILDERS, source=source)


__all__ = ["BUILDERS", "VILT_VQA_LABELS", "random_model_path"]
