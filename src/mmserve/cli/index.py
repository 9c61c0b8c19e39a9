"""``mmserve index``: add files to a collection, search it, list and drop collections.

Mounted by :mod:`mmserve.cli.main` as ``mmserve index``; also runnable as
``python -m mmserve.cli.index``. Models and the store come from the app config (local mode,
in this process). ``add`` shows a progress bar on stderr that advances only when a batch is
committed, so an interrupted ingest can simply be run again: it adds what is missing.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from tqdm import tqdm

from mmserve.cli.common import (
    ConfigOption,
    ProfileOption,
    echo_err,
    friendly,
    load_config,
    need_server,
    print_json,
    usage_error,
)
from mmserve.local.ingest import ingest, plan_ingest
from mmserve.local.mode import LocalApp
from mmserve.media import coerce_image
from mmserve.stores import open_store
from mmserve.workflow.steps.retrieve import search_collection

if TYPE_CHECKING:
    from mmserve.stores.contract import Match, VectorStore

index_app = typer.Typer(
    name="index",
    help="The retrieval index: add files to collections, search, list, drop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Encoder (config model name); the collection's by default."),
]


def _store(config: str, profile: str | None) -> VectorStore:
    need_server()
    return open_store(load_config(config, profile))


def _local(config: str, profile: str | None) -> LocalApp:
    need_server()
    return LocalApp(load_config(config, profile))


@index_app.command()
@friendly
def add(
    collection: Annotated[str, typer.Argument(help="Collection; created on first use.")],
    paths: Annotated[
        list[Path], typer.Argument(help="Folders of images, or .txt / .jsonl / .csv files.")
    ],
    config: ConfigOption = "",
    profile: ProfileOption = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=4096, help="Items per committed batch.")
    ] = 32,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Embed and add images or texts to COLLECTION (re-running adds only what is missing)."""
    app = _local(config, profile)
    plan = plan_ingest(paths)
    for skipped in plan.skipped:
        echo_err(f"skipped {skipped}")
    with tqdm(
        total=len(plan.entries), unit="item", desc=f"indexing into {collection}", file=sys.stderr
    ) as bar:
        report = asyncio.run(
            ingest(
                app.gateway,
                app.store,
                collection,
                plan,
                batch_size=batch_size,
                model=model,
                on_progress=bar.update,
                on_skip=lambda item: bar.write(f"skipped {item}", file=sys.stderr),
            )
        )
    if as_json:
        print_json(report.as_dict())
        return
    typer.echo(
        f"{collection}: {report.inserted} added, {report.present} already present, "
        f"{len(report.skipped)} skipped; {report.count} items in total"
    )


def _match_record(match: Match) -> dict[str, Any]:
    """A match in the one shape of every match (the retrieve step's, HTTP's, the client's):
    ``{id, score, payload: {text, image, metadata}}``, the image as base64."""
    payload = match.payload
    image = base64.b64encode(payload.image).decode("ascii") if payload.image else None
    return {
        "id": match.id,
        "score": round(match.score, 6),
        "payload": {"text": payload.text, "image": image, "metadata": payload.metadata},
    }


@index_app.command()
@friendly
def search(
    collection: Annotated[str, typer.Argument(help="Collection to search.")],
    text: Annotated[str | None, typer.Option("--text", help="A text query.")] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="An image query: @FILE (or FILE).")
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=100)] = 5,
    config: ConfigOption = "",
    profile: ProfileOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the items of COLLECTION closest to a text or an image."""
    if (text is None) == (image is None):
        usage_error("give exactly one of --text or --image @FILE")

    query_image = None
    if image is not None:
        query_image = coerce_image(Path(image.removeprefix("@")), name="--image")
    app = _local(config, profile)
    matches = asyncio.run(
        search_collection(
            app.gateway,
            app.store,
            collection,
            text=text,
            image=query_image,
            top_k=top_k,
            model=model,
        )
    )
    if as_json:
        print_json({"collection": collection, "matches": [_match_record(m) for m in matches]})
        return
    for rank, match in enumerate(matches, start=1):
        text = match.payload.text
        shown = text if text is not None else match.payload.metadata.get("source")
        typer.echo(f"{rank:>3}. {match.score:.4f}  {match.id}  {shown}")


@index_app.command("list")
@friendly
def list_collections(
    config: ConfigOption = "", profile: ProfileOption = None, as_json: JsonOption = False
) -> None:
    """List the collections with their embedding space, modality and item count."""
    collections = _store(config, profile).list_collections()
    if as_json:
        print_json({"collections": [c.model_dump(mode="json") for c in collections]})
        return
    if not collections:
        typer.echo("no collections (add some with `mmserve index add`)")
    for c in collections:
        typer.echo(f"{c.name}  {c.modality}  {c.count} items  space={c.space}")


@index_app.command()
@friendly
def drop(
    collection: Annotated[str, typer.Argument(help="Collection to delete, with its items.")],
    config: ConfigOption = "",
    profile: ProfileOption = None,
) -> None:
    """Delete COLLECTION and everything in it."""
    store = _store(config, profile)
    count = store.get_collection(collection).count
    store.drop_collection(collection)
    typer.echo(f"dropped {collection} ({count} items)")


if __name__ == "__main__":
    index_app(prog_name="mmserve index")


__all__ = ["index_app"]
