"""The HTTP API: search by upload or id, images and thumbnails, clusters, health, limits and clear
4xx answers, serving while a writer indexes, and one run on a real uvicorn server."""

from __future__ import annotations

import io
import socket
import threading
import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lookalike import Library
from lookalike.api.application import create_app
from lookalike.api.server import ApiSettings
from lookalike.errors import LibraryNotFoundError
from tests.searchlib import add_cluster_run, brute_force, build, class_image, vector_of, write_labelled


@pytest.fixture
def library(tmp_path):
    with build(tmp_path) as lib:
        lib.vector_index()  # what `lookalike serve` does before serving
        yield lib


@pytest.fixture
def client(library):
    with TestClient(create_app(library.folder, ApiSettings(max_upload_bytes=200_000))) as test_client:
        yield test_client


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_upload_search_returns_scored_hits_like_the_library(client, library):
    response = client.post("/search", files={"file": ("q.png", png(class_image(0, 777)), "image/png")}, data={"k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["hits"]) == 5 and body["query_images"] == [] and body["kind"] == "exact"
    expected = [h.image_id for h in library.search(png(class_image(0, 777)), k=5).hits]
    assert [h["image_id"] for h in body["hits"]] == expected
    hit = body["hits"][0]
    assert hit["label"] == "red" and 0 <= hit["confidence"] <= 1 and 0 <= hit["probability"] <= 1
    assert hit["image_url"] == f"/images/{hit['image_id']}" and hit["rank"] == 1


def test_search_by_image_ids_with_filters(client, library):
    ids = [int(i) for i in library.reduced().ids[:2]]
    body = client.post("/search", data={"image_id": ids, "k": 4, "label": "green"}).json()
    mean = np.mean([vector_of(library, i) for i in ids], axis=0)
    expected = [i for i in brute_force(library, mean, 40, exclude=tuple(ids))[0]
                if library.search(i, k=1, include_self=True).hits[0].label == "green"][:4]
    assert [h["image_id"] for h in body["hits"]] == expected and body["query_images"] == ids


def test_search_rerank_matches_the_library_and_bad_methods_are_422(client, library):
    ids = [int(library.reduced().ids[3])]
    body = client.post("/search", data={"image_id": ids, "k": 5, "rerank": "dba"}).json()
    expected = library.search(ids[0], k=5, rerank="dba").hits
    assert [h["image_id"] for h in body["hits"]] == [h.image_id for h in expected]
    assert all(h["rerank_score"] is not None for h in body["hits"])
    assert client.post("/search", data={"image_id": ids, "rerank": "diffusion"}).status_code == 422


def bad_upload(kind: str, badfiles) -> bytes:
    if kind == "text":
        return b"These are my holiday notes."
    if kind == "truncated":
        return png(class_image(1, 3))[:300]
    if kind == "bomb":  # a 100,000 x 100,000 header over 8 x 8 pixels of data
        return badfiles.png_bytes(100_000, 100_000, 8, 0, b"".join(b"\x00" + bytes(8) for _ in range(8)))
    return b"" if kind == "empty" else b"x" * 300_000


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("text", 415, "not_an_image"),
        ("truncated", 422, "corrupt_image"),
        ("bomb", 413, "image_too_large"),
        ("empty", 422, "empty_upload"),
        ("over-size", 413, "too_large"),
    ],
    ids=["text", "truncated", "bomb", "empty", "over-size"],
)
def test_bad_uploads_get_clear_json_4xx(client, badfiles_module, kind, status, code):
    files = {"file": ("evil.png", bad_upload(kind, badfiles_module), "image/png")}
    response = client.post("/search", files=files)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code and response.json()["detail"]


def test_bad_parameters_and_unknown_ids_are_4xx(client):
    upload = {"file": ("q.png", png(class_image(0, 1)), "image/png")}
    assert client.post("/search", data={"image_id": [10**6]}).json()["code"] == "unknown_image"
    assert client.post("/search", files=upload, data={"image_id": [1]}).json()["code"] == "bad_query"
    assert client.post("/search", files=upload, data={"k": 0}).status_code == 422
    answer = client.post("/search", files=upload, data={"label": "purple"})
    assert answer.status_code == 422 and "labels: blue, green, red" in answer.json()["detail"]
    assert client.post("/search", files=upload, data={"nprobe": 4}).json()["code"] == "invalid_parameter"
    assert client.get("/images/999999").status_code == 404
    assert client.get("/images/-1").status_code == 422
    assert client.get("/images/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)  # ids only


def test_images_thumbnails_clusters_health_and_openapi(client, library, tmp_path):
    image_id = int(library.reduced().ids[0])
    original = client.get(f"/images/{image_id}")
    assert original.status_code == 200 and original.headers["content-type"] == "image/png"
    path = library.search(image_id, k=1, include_self=True).hits[0].path
    assert original.content == open(path, "rb").read()
    thumb = client.get(f"/thumbnails/{image_id}", params={"size": 32})
    assert thumb.headers["content-type"] == "image/jpeg" and max(Image.open(io.BytesIO(thumb.content)).size) <= 32
    assert client.get("/clusters").json() == {"run": None, "clusters": []}
    ids = [int(i) for i in library.reduced().ids]
    run = add_cluster_run(library, {i: n % 2 for n, i in enumerate(ids)}, {0: "a", 1: "b"}, library.reducer().fingerprint)
    listing = client.get("/clusters").json()
    assert listing["run"]["id"] == run and not listing["run"]["stale"]
    assert [(c["cluster"], c["size"], c["name"]) for c in listing["clusters"]] == [(0, 18, "a"), (1, 18, "b")]
    assert client.get("/clusters", params={"run": 99}).status_code == 404
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["images"] == 36 and health["index"]["kind"] == "exact"
    assert "/search" in client.get("/openapi.json").json()["paths"]


def test_serves_the_catalog_state_while_a_writer_adds_images(library, tmp_path, monkeypatch):
    with TestClient(create_app(library.folder)) as client:
        assert client.get("/health").json()["index"]["vectors"] == 36
        old_ids = set(library.reduced().ids.tolist())
        write_labelled(tmp_path / "photos", 2, start=80)
        with monkeypatch.context() as patch:  # the writer commits images but not yet the index
            patch.setattr(Library, "_update_indexes", lambda self: None)
            library.add()
        health = client.get("/health").json()
        assert health["index"]["vectors"] == 42 and health["index"]["catching_up"]
        new_ids = set(library.reduced().ids.tolist()) - old_ids
        body = client.post("/search", data={"image_id": [min(new_ids)], "k": 41}).json()
        assert new_ids - {min(new_ids)} <= {h["image_id"] for h in body["hits"]}
        library.vector_index()  # the writer publishes the index: readers switch to it
        assert client.get("/health").json()["index"]["catching_up"] is False


def test_create_app_refuses_a_missing_library(tmp_path):
    with pytest.raises(LibraryNotFoundError):
        create_app(tmp_path / "nothing.lookalike")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_real_uvicorn_server_answers_on_loopback(library):
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(library.folder), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/health").json()["status"] == "ok"
            files = {"file": ("q.png", png(class_image(2, 5)), "image/png")}
            hits = http.post("/search", files=files, data={"k": 3}).json()["hits"]
            assert [h["label"] for h in hits] == ["blue"] * 3
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_library_stays_usable_by_writers_after_the_app_closes(library):
    with TestClient(create_app(library.folder)) as client:
        client.get("/health")
    with Library.open(library.folder, readonly=True) as reader:
        assert len(reader.reduced().ids) == 36


def test_clusters_lists_a_real_kmeans_run_and_search_filters_by_it(client, library):
    from lookalike.config import ClusterConfig

    run = library.cluster(ClusterConfig(method="kmeans", n_clusters=3, seed=0))
    listing = client.get("/clusters").json()
    assert listing["run"]["id"] == run.info.id and listing["run"]["method"] == "kmeans"
    assert listing["run"]["n_clusters"] == 3 and not listing["run"]["stale"]
    expected = {c.cluster: c for c in run.clusters}
    assert [c["cluster"] for c in listing["clusters"]] == sorted(expected)
    for entry in listing["clusters"]:
        stored = expected[entry["cluster"]]
        members = set(run.image_ids[run.labels == entry["cluster"]].tolist())
        assert entry["size"] == stored.size == len(members) and entry["name"] == stored.name
        assert entry["medoid_image_id"] in members and entry["representatives"][0] == entry["medoid_image_id"]
    assert sum(c["size"] for c in listing["clusters"]) == 36
    chosen = listing["clusters"][0]
    body = client.post("/search", data={"image_id": [chosen["medoid_image_id"]], "k": 40,
                                        "cluster": chosen["cluster"]}).json()
    members = set(run.image_ids[run.labels == chosen["cluster"]].tolist()) - {chosen["medoid_image_id"]}
    assert {h["image_id"] for h in body["hits"]} == members and body["cluster_run"] == run.info.id
    assert all(h["cluster"] == chosen["cluster"] for h in body["hits"])


def test_search_in_the_learned_projection_matches_the_library(library):
    ids = [int(library.reduced().ids[3])]
    query = {"image_id": ids, "k": 5, "projected": "true"}
    with TestClient(create_app(library.folder, ApiSettings())) as before:
        missing = before.post("/search", data=query)
    assert missing.status_code == 422 and "learn-projection" in missing.text
    library.learn_projection("lda")
    with TestClient(create_app(library.folder, ApiSettings())) as client:
        body = client.post("/search", data=query).json()
        both = client.post("/search", data={**query, "rerank": "dba"})
    expected = library.search(ids[0], k=5, projected=True).hits
    assert [h["image_id"] for h in body["hits"]] == [h.image_id for h in expected]
    assert both.status_code == 422
