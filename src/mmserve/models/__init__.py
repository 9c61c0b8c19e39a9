"""Model backends, one module per family, registered lazily so that listing them is cheap.

Importing this package registers the built-in ``model`` plugins by import path; a backend's
module (and torch) is imported only when the backend is first used.
"""

from mmserve.registry import registry

_BUILTIN_BACKENDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "clip": (
        "mmserve.models.backends.clip:ClipBackend",
        ("image_encoder", "text_encoder"),
        "CLIP joint image/text embeddings (CLIPModel towers + projections), unit-norm.",
    ),
    "sentence": (
        "mmserve.models.backends.sentence:SentenceBackend",
        ("text_encoder",),
        "BERT-family sentence embeddings: mean pooling over tokens, unit-norm.",
    ),
    "blip-caption": (
        "mmserve.models.backends.blip:BlipCaptionBackend",
        ("captioner",),
        "BLIP image captioning (BlipForConditionalGeneration), optional text prompt.",
    ),
    "blip-vqa": (
        "mmserve.models.backends.blip:BlipVqaBackend",
        ("vqa",),
        "BLIP visual question answering, generative (BlipForQuestionAnswering).",
    ),
    "vilt-vqa": (
        "mmserve.models.backends.vilt:ViltVqaBackend",
        ("vqa",),
        "ViLT visual question answering, a classifier over a fixed answer vocabulary.",
    ),
    "causal-lm": (
        "mmserve.models.backends.causal_lm:CausalLmBackend",
        ("llm",),
        "A chat model (AutoModelForCausalLM + its chat template), Qwen2.5-style tool calls.",
    ),
    "openai": (
        "mmserve.models.backends.openai_chat:OpenAIChatBackend",
        ("llm",),
        "Any OpenAI-compatible chat endpoint (vLLM, Ray Serve LLM, a hosted API) by base URL.",
    ),
    "diffusion": (
        "mmserve.models.backends.diffusion:TextToImageBackend",
        ("image_generator",),
        "diffusers text-to-image (AutoPipelineForText2Image): SD 1.5, SD-Turbo, SDXL-Turbo.",
    ),
    "instruct-pix2pix": (
        "mmserve.models.backends.diffusion:InstructPix2PixBackend",
        ("image_editor",),
        "diffusers InstructPix2Pix: edit an image from a text instruction.",
    ),
    "fake": (
        "mmserve.models.backends.fake:FakeBackend",
        ("image_encoder", "text_encoder", "captioner", "vqa"),
        "Deterministic weight-free model for every role, for testing workflows.",
    ),
    "fake-llm": (
        "mmserve.models.backends.fake_llm:FakeLlmBackend",
        ("llm",),
        "Deterministic weight-free chat model with scripted tool calls, for testing agents.",
    ),
}

#: The Hugging Face backends' source check, importable without torch (see loader.check_source_of).
_HF_SOURCE_CHECK = "mmserve.models.hf:check_hf_source"
_DIFFUSION_SOURCE_CHECKS = {
    "diffusion": "mmserve.models.sources.diffusion:check_text_to_image_source",
    "instruct-pix2pix": "mmserve.models.sources.diffusion:check_instruct_pix2pix_source",
}

#: The diffusion backends' item check, importable without torch (see loader.item_check_of).
_DIFFUSION_ITEM_CHECKS = {
    "diffusion": "mmserve.models.image_limits:check_generate_item",
    "instruct-pix2pix": "mmserve.models.image_limits:check_edit_item",
}

for _name, (_target, _roles, _description) in _BUILTIN_BACKENDS.items():
    _meta = {"roles": list(_roles), "description": _description}
    if _name in _DIFFUSION_SOURCE_CHECKS:  # their tiny:// and random:// pipelines
        _meta["check_source"] = _DIFFUSION_SOURCE_CHECKS[_name]
        _meta["check_item"] = _DIFFUSION_ITEM_CHECKS[_name]
    elif not _name.startswith("fake") and _name != "openai":  # these check their own sources
        _meta["check_source"] = _HF_SOURCE_CHECK
    registry.register("model", _name, _target, meta=_meta)
