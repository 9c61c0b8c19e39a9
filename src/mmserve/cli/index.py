"""``mmserve index``: add files to a collection, search it, list and drop collections.

Mounted by :mod:`mmserve.cli.main` as ``mmserve index``; also runnable as
``python -m mmserve.cli.index``. Models and the store come from the app config (local mode,
in this process), or with ``--url`` from a running server, through its HTTP API
(:mod:`mmserve.cli.index_remote`; no ``server`` extra needed). Both forms print the same
lines and the same ``--json``. ``add`` shows a progress bar on stderr that advances only when
a batch is committed, so an interrupted ingest can simply be run again: it adds what is
missing.
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
from mmserve.cli.index_remote import (
    collection_record,
    connect,
    existing_ids,
    ingest_remote,
    space_text,
)
from mmserve.errors import InputError
from mmserve.local.ingest import IngestReport, ingest, plan_ingest
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
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Work on the mmserve server at this URL, through its HTTP API (the API key from "
        "$MMSERVE_API_KEY), instead of a store of this machine.",
    ),
]


def _one_place(url: str | None, config: str, profile: str | None) -> None:
    """A usage error for ``--url`` with ``--config`` or ``--profile``: a server has its own."""
    if url is not None and (config or profile):
        usage_error("--url works on the server's own config; leave out --config and --profile")


def _store(config: str, profile: str | None, command: str) -> VectorStore:
    need_server(command)
    return open_store(load_config(config, profile))


def _local(config: str, profile: str | None, command: str) -> LocalApp:
    need_server(command)
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
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Embed and add images or texts to COLLECTION (re-running adds only what is missing)."""
    _one_place(url, config, profile)
    if url is not None:
        report = _add_remote(url, collection, paths, batch_size, model)
    else:
        app = _local(config, profile, "index add")
        plan = plan_ingest(paths)
        for skipped in plan.skipped:
            echo_err(f"skipped {skipped}")
        with _bar(len(plan.entries), collection) as bar:
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


def _bar(total: int, collection: str) -> tqdm[Any]:
    """The progress bar of ``add`` (stderr), advanced as each batch is committed."""
    return tqdm(total=total, unit="item", desc=f"indexing into {collection}", file=sys.stderr)


def _add_remote(
    url: str, collection: str, paths: list[Path], batch_size: int, model: str | None
) -> IngestReport:
    plan = plan_ingest(paths)
    with connect(url) as client:
        # before the bar: a server that does not answer, or refuses the key, is one line
        present = existing_ids(client, collection)
        for skipped in plan.skipped:
            echo_err(f"skipped {skipped}")
        with _bar(len(plan.entries), collection) as bar:
            return ingest_remote(
                client,
                collection,
                plan,
                present,
                batch_size=batch_size,
                model=model,
                on_progress=bar.update,
                on_skip=lambda item: bar.write(f"skipped {item}", file=sys.stderr),
            )


def _match_record(match: Match) -> dict[str, Any]:
    """A match in the one shape of every match (the retrieve step's, HTTP's, the client's):
    ``{id, score, payload: {text, image, metadata}}``, the image as base64."""
    payload = match.payload
    image = base64.b64encode(payload.image).decode("ascii") if payload.image else None
    return {
        "id": match.id,
        "score": match.score,
        "payload": {"text": payload.text, "image": image, "metadata": payload.metadata},
    }


def _print_matches(collection: str, matches: list[dict[str, Any]], as_json: bool) -> None:
    """The matches (:func:`_match_record`'s shape), best first: one line each, or JSON."""
    if as_json:
        rounded = [{**m, "score": round(m["score"], 6)} for m in matches]
        print_json({"collection": collection, "matches": rounded})
        return
    for rank, match in enumerate(matches, start=1):
        text, metadata = match["payload"].get("text"), match["payload"].get("metadata") or {}
        shown = text if text is not None else metadata.get("source")
        typer.echo(f"{rank:>3}. {match['score']:.4f}  {match['id']}  {shown}")


def _query_image(image: str) -> bytes:
    """The file of ``--image @FILE`` as it is (the server decodes it)."""
    path = Path(image.removeprefix("@"))
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"input '--image': cannot read {str(path)!r}: {exc.strerror or exc}", name="--image"
        ) from exc


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
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the items of COLLECTION closest to a text or an image."""
    if (text is None) == (image is None):
        usage_error("give exactly one of --text or --image @FILE")
    _one_place(url, config, profile)
    if url is not None:
        query = None if image is None else _query_image(image)
        with connect(url) as client:
            found = client.collections.search(
                collection, text=text, image=query, top_k=top_k, model=model
            )
        _print_matches(collection, found, as_json)
        return

    query_image = None
    if image is not None:
        query_image = coerce_image(Path(image.removeprefix("@")), name="--image")
    app = _local(config, profile, "index search")
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
    _print_matches(collection, [_match_record(m) for m in matches], as_json)


@index_app.command("list")
@friendly
def list_collections(
    config: ConfigOption = "",
    profile: ProfileOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the collections with their embedding space, modality and item count."""
    _one_place(url, config, profile)
    if url is not None:
        with connect(url) as client:
            collections = [collection_record(c) for c in client.collections.list()]
    else:
        found = _store(config, profile, "index list").list_collections()
        collections = [c.model_dump(mode="json") for c in found]
    if as_json:
        print_json({"collections": collections})
        return
    if not collections:
        typer.echo("no collections (add some with `mmserve index add`)")
    for c in collections:
        space = space_text(c["space"])
        typer.echo(f"{c['name']}  {c['modality']}  {c['count']} items  space={space}")


@index_app.command()
@friendly
def drop(
    collection: Annotated[str, typer.Argument(help="Collection to delete, with its items.")],
    config: ConfigOption = "",
    profile: ProfileOption = None,
    url: UrlOption = None,
) -> None:
    """Delete COLLECTION and everything in it."""
    _one_place(url, config, profile)
    if url is not None:
        with connect(url) as client:
            count = client.collections.drop(collection)["count"]
        typer.echo(f"dropped {collection} ({count} items)")
        return
    store = _store(config, profile, "index drop")
    count = store.get_collection(collection).count
    store.drop_collection(collection)
    typer.echo(f"dropped {collection} ({count} items)")


if __name__ == "__main__":
    index_app(prog_name="mmserve index")


__all__ = ["index_app"]
