"""The `score` step through the engine equals CLIPScore computed directly with the CLIP
backend: max(100 * cos(image, text), 0)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmserve.config import AppConfig
from mmserve.local.mode import LocalApp
from mmserve.models.backends.clip import ClipBackend
from mmserve.models.spec import ModelSpec

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCORE = """
name: score_only
inputs:
  image: {type: image}
  text: {type: string}
steps:
  score: {uses: score, with: {image: "${inputs.image}", text: "${inputs.text}"}}
outputs:
  score: ${score.score}
  similarity: ${score.similarity}
"""


def test_score_is_clipscore_of_the_configured_encoders(tmp_path: Path) -> None:
    workflow = tmp_path / "score_only.yaml"
    workflow.write_text(SCORE)
    app = LocalApp(AppConfig.load(ROOT / "deployments" / "tiny.yaml"))
    clip = ClipBackend(ModelSpec(source="tiny://clip"))
    texts = ["a red circle", "a photo of a dog running in the green park", "blue"]
    image = Image.open(ROOT / "examples" / "images" / "red_circle.png").convert("RGB")
    image_vector = clip.embed_images([image])[0].astype(np.float64)
    text_vectors = clip.embed_texts(texts).astype(np.float64)
    for text, text_vector in zip(texts, text_vectors, strict=True):
        result = asyncio.run(app.run(str(workflow), {"image": image, "text": text}))
        cosine = float(image_vector @ text_vector)
        assert result.outputs["similarity"] == pytest.approx(cosine, abs=1e-5)
        assert result.outputs["score"] == pytest.approx(max(100 * cosine, 0.0), abs=1e-3)
        assert 0.0 <= result.outputs["score"] <= 100.0
