"""The routes of the HTTP API (see :mod:`lookalike.api.server` for the contract and the safety rules).

No ``from __future__ import annotations`` here: FastAPI reads the parameter annotations at run
time, and they refer to this app's settings (e.g. the largest ``k``)."""


from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar, get_type_hints

from fastapi import FastAPI, File, Form, UploadFile
from fastapi import Path as PathParam
from fastapi import Query as QueryParam
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field, create_model

from lookalike.api.server import ApiError, LibraryWorker, error_status
from lookalike.errors import LookalikeError, VectorIndexError
from lookalike.search.searcher import SearchFilters, SearchHit

T = TypeVar("T")
MAX_ID = 2**63 - 1
"""Largest id SQLite and FAISS store (signed 64-bit): larger ones are invalid, not server errors."""
MAX_BEAM = 1 << 16
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown image id or cluster run"},
    413: {"description": "Upload over the size limit, or image over the pixel limit"},
    415: {"description": "The upload is not an image"},
    422: {"description": "Corrupt image or invalid parameter"},
    503: {"description": "The library has no usable vector index yet"},
}


Hit = create_model(
    "Hit",
    **{name: (hint, ...) for name, hint in get_type_hints(SearchHit).items()},  # type: ignore[call-overload]
    image_url=(str, ...),
    thumbnail_url=(str, ...),
)
"""A :class:`lookalike.search.searcher.SearchHit` with the URLs of its image and thumbnail."""


class SearchResponse(BaseModel):
    hits: list[Hit]  # type: ignore[valid-type]
    kind: str
    query_images: list[int]
    cluster_run: int | None
    seconds: dict[str, float]


def add_routes(app: FastAPI, worker: LibraryWorker) -> None:
    """Add every endpoint, each running its library work on ``worker``."""
    settings = worker.settings

    async def call(job: Callable[[LibraryWorker], T]) -> T:
        try:
            return await worker.run(job)
        except LookalikeError as exc:
            raise error_status(exc) from None

    @app.post("/search", response_model=SearchResponse, responses=ERRORS)  # type: ignore[untyped-decorator]
    async def search(
        file: Annotated[UploadFile | None, File(description="The query image (any format the library ingests).")] = None,
        image_id: Annotated[list[Annotated[int, Field(ge=0, le=MAX_ID)]] | None, Form(description="Or: ids of library images (several: their mean).")] = None,
        k: Annotated[int, Form(ge=1, le=settings.max_k)] = 10,
        cluster: Annotated[int | None, Form(ge=-1, le=MAX_ID, description="Only images in this cluster of the run.")] = None,
        run: Annotated[int | None, Form(ge=0, le=MAX_ID, description="Cluster run (default: the latest).")] = None,
        label: Annotated[str | None, Form(description="Only images with this label.")] = None,
        include_self: Annotated[bool, Form(description="Keep library images used as the query.")] = False,
        nprobe: Annotated[int | None, Form(ge=1, le=MAX_BEAM, description="IVF clusters searched (ivf index only).")] = None,
        ef_search: Annotated[int | None, Form(ge=1, le=MAX_BEAM, description="HNSW beam width (hnsw index only).")] = None,
        rerank: Annotated[Literal["none", "aqe", "dba", "kreciprocal"], Form(
            description="Re-rank the nearest candidates at query time (none: exact order).")] = "none",
        projected: Annotated[bool, Form(description="Order the nearest candidates in the learned label projection "
                                        "(`lookalike learn-projection` first); not with rerank.")] = False,
    ) -> dict[str, Any]:
        """The k library images most similar to an uploaded image or to library images."""
        if (file is None) == (not image_id):
            raise ApiError(422, "bad_query", "send either an image 'file' or 'image_id' field(s), not both")
        query: Any = image_id
        if file is not None:
            query = await file.read(settings.max_upload_bytes + 1)
            if len(query) > settings.max_upload_bytes:
                raise ApiError(413, "too_large", f"upload over {settings.max_upload_bytes} bytes")
            if not query:
                raise ApiError(422, "empty_upload", "the uploaded file is empty")
        filters = SearchFilters(cluster=cluster, run=run, label=label)

        def job(w: LibraryWorker) -> dict[str, Any]:
            searcher = w.searcher()
            if image_id:
                unknown = [i for i, known in zip(image_id, searcher.live.contains(image_id)) if not known]
                if unknown:
                    raise ApiError(404, "unknown_image", f"no embedded image {unknown[0]} in the library")
            result = searcher.search(query, k, filters=filters, nprobe=nprobe, ef_search=ef_search,
                                     include_self=include_self, rerank=rerank, projected=projected)
            return result.to_dict()

        result = await call(job)
        for hit in result["hits"]:
            hit["image_url"] = f"/images/{hit['image_id']}"
            hit["thumbnail_url"] = f"/thumbnails/{hit['image_id']}"
        return result

    @app.get("/images/{image_id}", responses={404: ERRORS[404]}, response_class=FileResponse)  # type: ignore[untyped-decorator]
    async def image(image_id: Annotated[int, PathParam(ge=0, le=MAX_ID)]) -> FileResponse:
        """The original file of a library image."""
        path, media_type = await call(lambda w: w.image_file(image_id))
        return FileResponse(path, media_type=media_type)

    @app.get("/thumbnails/{image_id}", responses={404: ERRORS[404]}, response_class=Response)  # type: ignore[untyped-decorator]
    async def thumbnail(
        image_id: Annotated[int, PathParam(ge=0, le=MAX_ID)], size: Annotated[int, QueryParam(ge=16, le=1024)] = 256
    ) -> Response:
        """A JPEG of the image scaled to fit ``size`` x ``size``."""
        data = await call(lambda w: w.thumbnail(image_id, size))
        return Response(content=data, media_type="image/jpeg")

    @app.get("/clusters", responses={404: ERRORS[404]})  # type: ignore[untyped-decorator]
    async def clusters(
        run: Annotated[int | None, QueryParam(ge=0, le=MAX_ID, description="Run id (default: the latest).")] = None,
    ) -> dict[str, Any]:
        """The latest (or given) cluster run: settings, and each cluster's size, name, medoid."""
        return await call(lambda w: cluster_listing(w, run))

    @app.get("/health")  # type: ignore[untyped-decorator]
    async def health() -> dict[str, Any]:
        """Whether the API can search, how many images, which index."""
        return await call(health_report)


def cluster_listing(worker: LibraryWorker, run: int | None) -> dict[str, Any]:
    from dataclasses import asdict

    from lookalike.store.runs import run_clusters, run_infos

    reducer = worker.lib.reducer()
    runs = run_infos(worker.lib.catalog, None if reducer is None else reducer.fingerprint)
    chosen = [r for r in runs if run is None or r.id == run][-1:]
    if not chosen:
        if run is not None:
            raise ApiError(404, "unknown_run", f"no cluster run {run} in the library")
        return {"run": None, "clusters": []}
    info = chosen[0]
    shown = {"id": info.id, "method": info.method, "n_images": info.n_images, "n_clusters": info.n_clusters,
             "n_noise": info.n_noise, "reducer_fingerprint": info.reducer_fingerprint, "created": info.created,
             "stale": info.stale}  # fmt: skip
    clusters = [{**asdict(c), "medoid_image_id": c.medoid, "representatives": list(c.representatives)}
                for c in run_clusters(worker.lib.catalog, info.id)]  # fmt: skip
    for c in clusters:
        del c["medoid"]
    return {"run": shown, "clusters": clusters}


def health_report(worker: LibraryWorker) -> dict[str, Any]:
    from lookalike.store.images import embedded_count

    images = embedded_count(worker.lib.catalog)
    report: dict[str, Any] = {"status": "ok", "library": worker.path.name, "images": images}
    try:
        live = worker.searcher().live
    except VectorIndexError as exc:
        return {**report, "status": "no_index", "detail": str(exc)}
    report["index"] = {"kind": live.kind, "vectors": len(live), "stored": live.path is not None,
                       "catching_up": not live.is_plain}
    return report
