"""Diffusion pipelines built offline: ``tiny://stable-diffusion``, ``tiny://instruct-pix2pix``
and ``random://sd-turbo``.

The tiny pipelines are diffusers' own test pipelines (``get_dummy_components`` of its Stable
Diffusion and InstructPix2Pix tests) with two changes: the VAE has four blocks, so that one
latent pixel is 8x8 image pixels as in the real models (the same sizes are valid), and the
tokenizer is the offline CLIP tokenizer of ``tiny://clip``. ``random://sd-turbo`` has the
published architecture of stabilityai/sd-turbo (SD 2.1 at 512 px: UNet, OpenCLIP ViT-H text
encoder, SD VAE, Euler scheduler with trailing timesteps) with random weights: a denoising
step costs what the real model's costs. Every build is seeded (see :func:`.tiny.seeded_build`),
saved with ``save_pretrained`` and loaded by the same ``from_pretrained`` as a hub pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmserve.models.sources.tokenizers import clip_tokenizer

#: The tiny text encoder's width, which is also the UNet's cross-attention width.
_TINY_TEXT_DIM = 32


def _tiny_text_encoder(tokenizer: Any) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel  # deferred: pulls in transformers

    config = CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        hidden_size=_TINY_TEXT_DIM,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=77,
    )
    return CLIPTextModel(config)


def _tiny_unet(in_channels: int) -> Any:
    from diffusers import UNet2DConditionModel  # deferred: pulls in diffusers

    return UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=_TINY_TEXT_DIM,
        attention_head_dim=2,
        norm_num_groups=2,
    )


def _tiny_vae() -> Any:
    from diffusers import AutoencoderKL  # deferred: pulls in diffusers

    return AutoencoderKL(
        block_out_channels=[4, 4, 8, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        sample_size=256,
    )


def _build_tiny_stable_diffusion(dest: Path) -> None:
    from diffusers import (  # deferred: pulls in diffusers
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
    )

    tokenizer = clip_tokenizer()
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    pipeline: Any = StableDiffusionPipeline(
        vae=_tiny_vae(),
        text_encoder=_tiny_text_encoder(tokenizer),
        tokenizer=tokenizer,
        unet=_tiny_unet(in_channels=4),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(dest)


def _build_tiny_instruct_pix2pix(dest: Path) -> None:
    from diffusers import (  # deferred: pulls in diffusers
        EulerAncestralDiscreteScheduler,
        StableDiffusionInstructPix2PixPipeline,
    )

    tokenizer = clip_tokenizer()
    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    pipeline: Any = StableDiffusionInstructPix2PixPipeline(
        vae=_tiny_vae(),
        text_encoder=_tiny_text_encoder(tokenizer),
        tokenizer=tokenizer,
        # InstructPix2Pix's UNet reads the noisy latents and the input image's latents.
        unet=_tiny_unet(in_channels=8),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(dest)


def _build_sd_turbo(dest: Path) -> None:
    """stabilityai/sd-turbo: the SD 2.1 architecture at 512 px, random weights."""
    from diffusers import (  # deferred: pulls in diffusers
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel  # deferred: pulls in transformers

    tokenizer = clip_tokenizer()
    text = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=23,
        num_attention_heads=16,
        hidden_act="gelu",
        projection_dim=512,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    unet = UNet2DConditionModel(
        sample_size=64,
        block_out_channels=(320, 640, 1280, 1280),
        attention_head_dim=(5, 10, 20, 20),
        cross_attention_dim=1024,
        use_linear_projection=True,
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    vae = AutoencoderKL(
        block_out_channels=[128, 256, 512, 512],
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=768,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    pipeline: Any = StableDiffusionPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(text),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(dest)


TINY_BUILDERS: dict[str, Callable[[Path], None]] = {
    "stable-diffusion": _build_tiny_stable_diffusion,
    "instruct-pix2pix": _build_tiny_instruct_pix2pix,
}
RANDOM_BUILDERS: dict[str, Callable[[Path], None]] = {"sd-turbo": _build_sd_turbo}


__all__ = ["RANDOM_BUILDERS", "TINY_BUILDERS"]
