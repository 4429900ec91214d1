"""Embedding on a Ray cluster: the driver owns the library, Ray Data workers only compute.

The driver (the process running ``lookalike index --ray``) scans and lists the pending images as a
local run does. Each chunk of pending images becomes a Ray Data dataset built with
``from_items`` (image id and path: no read tasks, so nothing waits for a CPU an actor holds),
mapped by :class:`EmbedActor` in ``map_batches`` on an actor pool: every actor holds one ONNX
Runtime session (or a native backbone), reads the files by path (the cluster shares a file
system), decodes them as a local run does (:func:`~lookalike.embed.query.pending_decoder` of the
library's manifest), and returns one row per image: its vector, pHash and top classes, or the reason it was skipped.
The rows stream back to the driver (``iter_batches``), which commits them through
:class:`~lookalike.embed.extract.RowWriter`, the writer of a local run; so a killed driver loses
only uncommitted images (they stay pending), and an image delivered twice (a task Ray retried
after a worker was lost) is committed once.

Sizing: each actor reserves ``actor_cpus`` (default half a CPU) and the pool holds at most one
actor per cluster CPU, so half the CPU reservation stays free: for Ray Data's own tasks, and for
an actor restarted on a surviving node after a node is lost (actors restart without limit and
retry their in-flight batches; a batch is pure, so a retry gives the same rows).

``ray`` is an optional dependency (``pip install 'lookalike[ray]'``), imported only here.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.config import ExtractConfig
from lookalike.embed.base import Backbone, BackboneSpec
from lookalike.embed.extract import Decoded, Embedded, ExtractReport, RowWriter, decode_one, embed_group, start_run
from lookalike.embed.query import pending_decoder
from lookalike.errors import BackboneError, ClusterError, InvalidParameterError, MissingDependencyError
from lookalike.progress import Progress
from lookalike.store.catalog import Catalog, PendingImage
from lookalike.store.manifest import Manifest
from lookalike.store.vectors import RawVectors

INSTALL = "pip install 'lookalike[ray]'"
TOP_K = 5
"""Top ImageNet classes kept per image (as a local run)."""
ON_WORKER = np.zeros(0, dtype=np.uint8)
"""Stands for pixels that were decoded on a worker and never came back (only the vector did)."""


def require_ray() -> None:
    """Raise :class:`MissingDependencyError` naming the install command when Ray Data is missing."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("ray", "--ray (embedding on a Ray cluster)", install=INSTALL) from exc


@dataclass(frozen=True)
class RayConfig:
    """How an indexing run uses a Ray cluster.

    Attributes
    ----------
    address : ``auto`` joins the cluster of ``$RAY_ADDRESS`` or the one last started on this
        machine, else starts a local one; or a cluster address such as ``10.0.0.1:6379``. A process
        already connected to Ray (``ray.init`` called) keeps its connection.
    actor_cpus : CPUs each embedding actor reserves (its ONNX Runtime session uses
        ``ceil(actor_cpus)`` threads).
    actors : most actors in the pool; 0 = one per CPU of the cluster.
    chunk_images : pending images per dataset (bounds the driver's memory on huge libraries).
    stall_seconds : fail with :class:`ClusterError` when no result arrives for this long.
    """

    address: str = "auto"
    actor_cpus: float = 0.5
    actors: int = 0
    chunk_images: int = 50_000
    stall_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not self.address:
            raise InvalidParameterError("the Ray address must be 'auto' or HOST:PORT, got an empty string")
        if not 0 < self.actor_cpus:
            raise InvalidParameterError(f"actor_cpus must be > 0, got {self.actor_cpus}")
        if self.actors < 0 or self.chunk_images < 1 or self.stall_seconds <= 0:
            raise InvalidParameterError(
                f"need actors >= 0, chunk_images >= 1, stall_seconds > 0; got {self.actors}, "
                f"{self.chunk_images}, {self.stall_seconds}"
            )


@dataclass(frozen=True)
class WorkerModel:
    """What a worker needs to build the library's backbone: the exported ONNX file (checked by its
    SHA-256) or, for a native backbone, its registry name."""

    spec: BackboneSpec
    weights_sha256: str
    onnx_path: str | None
    onnx_sha256: str | None
    threads: int

    @classmethod
    def of(cls, backbone: Backbone, threads: int) -> WorkerModel:
        """The worker-side description of the driver's loaded ``backbone``."""
        from lookalike.embed.base import weights_sha256
        from lookalike.embed.registry import get_entry
        from lookalike.embed.runtime import OnnxBackbone

        if isinstance(backbone, OnnxBackbone) and backbone.model_path is not None:
            path = Path(backbone.model_path).resolve()
            return cls(backbone.spec, backbone.weights_sha256, str(path), weights_sha256(path), threads)
        if get_entry(backbone.spec.name).kind == "native":
            return cls(backbone.spec, backbone.weights_sha256, None, None, threads)
        raise BackboneError(f"backbone {backbone.spec.name!r} has no model file that Ray workers could load")

    def load(self) -> Backbone:
        """Build the backbone on a worker; the ONNX file must be the driver's (same SHA-256)."""
        from lookalike.embed.base import weights_sha256
        from lookalike.embed.registry import load_backbone

        if self.onnx_path is None:
            return load_backbone(self.spec.name)
        from lookalike.embed.runtime import OnnxBackbone, make_session

        path = Path(self.onnx_path)
        try:
            found = weights_sha256(path)
        except OSError as exc:
            raise BackboneError(f"{path}: a Ray worker cannot read the model file ({exc}); share it with every node") from exc
        if found != self.onnx_sha256:
            raise BackboneError(
                f"{path}: the model file on a Ray worker has sha256 {found[:12]}…, the driver's {str(self.onnx_sha256)[:12]}…"
            )
        return OnnxBackbone(self.spec, self.weights_sha256, make_session(path, self.threads), model_path=path)


class EmbedActor:
    """A Ray Data ``map_batches`` callable class: one backbone (one runtime session) per actor.

    A batch ``{"image_id": (n,) int64, "path": (n,) bytes}`` becomes ``{"image_id", "ok" (n,) bool,
    "reason" (n,) str ("" when ok), "phash" (n,) uint64, "dhash" (n,) uint64, "vector" (n, dim) float32,
    "node" (n,) str}``
    plus ``"classes"`` (n, 5) int16 and ``"probabilities"`` (n, 5) float32 for backbones with an
    ImageNet head; rows of skipped images hold zeros.
    """

    def __init__(self, model: WorkerModel, manifest: Manifest) -> None:
        import ray

        self.backbone = model.load()
        self.decode = pending_decoder(manifest)
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = [
            PendingImage(int(i), Path(os.fsdecode(bytes(p)))) for i, p in zip(batch["image_id"], batch["path"])
        ]
        group = [decode_one(image, self.decode) for image in images]
        return _to_columns(group, embed_group(group, self.backbone.embed_with_classes), self.backbone.spec, self.node)


def _to_columns(group: list[Decoded], embedded: Embedded, spec: BackboneSpec, node: str) -> dict[str, np.ndarray]:
    """One output row per item of ``group`` (see :class:`EmbedActor`)."""
    n = len(group)
    ok = np.array([item.pixels is not None for item in group], dtype=bool)
    vectors = np.zeros((n, spec.dim), dtype=np.float32)
    found, classes, probabilities = embedded
    if found.size:
        vectors[ok] = found
    columns = {
        "image_id": np.array([item.image.image_id for item in group], dtype=np.int64),
        "ok": ok,
        "reason": np.array([item.reason or "" for item in group], dtype=object),
        "phash": np.array([item.phash or 0 for item in group], dtype=np.uint64),
        "dhash": np.array([item.dhash or 0 for item in group], dtype=np.uint64),
        "vector": vectors,
        "node": np.array([node] * n, dtype=object),
    }
    if spec.has_classifier:
        columns["classes"] = np.zeros((n, TOP_K), dtype=np.int16)
        columns["probabilities"] = np.zeros((n, TOP_K), dtype=np.float32)
        if classes is not None and probabilities is not None:
            columns["classes"][ok], columns["probabilities"][ok] = classes, probabilities
    return columns


def _from_columns(
    batch: dict[str, np.ndarray], waiting: dict[int, PendingImage]
) -> tuple[list[Decoded], Embedded, Counter[str]]:
    """The driver's view of one result batch: (items, embedded rows, images per node).

    Rows of images no longer ``waiting`` (delivered before, by a retried task) are dropped, so
    every image is committed once.
    """
    keep = _first_delivery(batch["image_id"], waiting)
    group: list[Decoded] = []
    nodes: Counter[str] = Counter()
    for i, image in keep:
        if batch["ok"][i]:
            group.append(Decoded(image, ON_WORKER, None, int(batch["phash"][i]), int(batch["dhash"][i])))
            nodes[str(batch["node"][i])] += 1
        else:
            group.append(Decoded(image, None, str(batch["reason"][i]) or "could not be decoded"))
    rows = [i for i, _ in keep if batch["ok"][i]]
    vectors = np.asarray(batch["vector"][rows], dtype=np.float32).reshape(len(rows), -1)
    classes = probabilities = None
    if "classes" in batch:
        classes, probabilities = batch["classes"][rows], batch["probabilities"][rows]
    return group, (vectors, classes, probabilities), nodes


def _first_delivery(ids: np.ndarray, waiting: dict[int, PendingImage]) -> list[tuple[int, PendingImage]]:
    """(row, image) of the rows whose image is still waiting; those images stop waiting."""
    keep = []
    for i, image_id in enumerate(ids.tolist()):
        image = waiting.pop(int(image_id), None)
        if image is not None:
            keep.append((i, image))
    return keep


def extract_on_ray(
    catalog: Catalog,
    vectors: RawVectors,
    backbone: Backbone,
    manifest: Manifest,
    config: ExtractConfig,
    ray_config: RayConfig,
    progress: Progress,
) -> ExtractReport:
    """Embed every pending image of ``catalog`` on a Ray cluster; see the module docstring.

    ``backbone`` is the driver's loaded backbone (checked against the library's weights); the
    workers load the same model file and decode with the library's ``manifest``. ``config.batch_size`` is the ``map_batches`` batch size and
    ``config.commit_every`` the driver's commit interval, as in a local run.
    """
    require_ray()
    pending, report, writer = start_run(catalog, vectors, config, progress)
    started = time.perf_counter()
    if pending:
        with connected(ray_config.address):
            model = WorkerModel.of(backbone, threads=max(1, math.ceil(ray_config.actor_cpus)))
            for start in range(0, len(pending), ray_config.chunk_images):
                chunk = pending[start : start + ray_config.chunk_images]
                _embed_chunk(chunk, model, manifest, config, ray_config, writer, report, progress)
                writer.commit()
    report.seconds = time.perf_counter() - started
    return report


def _embed_chunk(
    chunk: list[PendingImage],
    model: WorkerModel,
    manifest: Manifest,
    config: ExtractConfig,
    ray_config: RayConfig,
    writer: RowWriter,
    report: ExtractReport,
    progress: Progress,
) -> None:
    """Run one dataset over ``chunk`` and write what comes back, as it comes back."""
    waiting = {image.image_id: image for image in chunk}
    dataset = _dataset(chunk, model, manifest, config, ray_config)
    batches = dataset.iter_batches(batch_size=None, batch_format="numpy")
    for batch in _within(batches, ray_config.stall_seconds):
        group, embedded, nodes = _from_columns(batch, waiting)
        writer.write(group, embedded)
        report.embedded += embedded[0].shape[0]
        report.skipped.update(item.reason or "" for item in group if item.pixels is None)
        report.by_worker.update(nodes)
        progress.advance(len(group))
    if waiting:  # Ray Data finished without them: never expected, so never silently ignored
        raise ClusterError(f"the Ray job ended with {len(waiting)} image(s) never returned; run the command again")


def _dataset(
    chunk: list[PendingImage], model: WorkerModel, manifest: Manifest, config: ExtractConfig, ray_config: RayConfig
) -> Any:
    """The Ray Data pipeline of one chunk: items (no read tasks) -> map_batches on an actor pool."""
    import ray
    import ray.data

    items = [{"image_id": image.image_id, "path": os.fsencode(image.path)} for image in chunk]
    cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
    actors = ray_config.actors or max(1, int(cpus))
    blocks = max(1, math.ceil(len(items) / config.batch_size))  # one batch per block: fine-grained balance
    dataset = ray.data.from_items(items, override_num_blocks=min(blocks, len(items)))
    context = dataset.context  # this dataset's own copy: the process-wide context stays as it was
    context.enable_progress_bars = False  # the driver shows its own progress
    # inputs are a few bytes per image: send each batch to the least busy actor, not to an actor
    # on the driver's node (locality keeps small jobs on one node). Deprecated in Ray 2.60, still
    # honoured by its actor pool (the extra pins 2.60.*).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        context.execution_options.actor_locality_enabled = False
    context.wait_for_min_actors_s = max(1, int(ray_config.stall_seconds))  # all actors up before work starts
    # Ray Data's actor pools restart lost actors without limit (max_restarts=-1) and retry their
    # tasks (max_task_retries=-1), and spread actors over the nodes: the defaults in Ray 2.60.
    return dataset.map_batches(
        EmbedActor,
        fn_constructor_args=(model, manifest),
        batch_size=config.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors, initial_size=actors),
        num_cpus=ray_config.actor_cpus,
    )


@contextmanager
def connected(address: str) -> Iterator[None]:
    """Connected to Ray for the block: an existing connection is kept; one made here is closed."""
    import ray

    if ray.is_initialized():
        yield
        return
    try:
        ray.init(address=None if address == "auto" else address, log_to_driver=False, include_dashboard=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ClusterError(
            f"cannot join the Ray cluster at {address!r} ({exc}); start one with `ray start --head` "
            "or pass --ray auto to start a local one"
        ) from exc
    try:
        yield
    finally:
        ray.shutdown()


def _within(items: Iterator[Any], seconds: float) -> Iterator[Any]:
    """``items``, produced by a helper thread; :class:`ClusterError` when none comes for ``seconds``.

    A Ray job that cannot be scheduled (too few CPUs, a lost cluster) waits forever; this turns
    such a wait into an error naming the cluster's resources.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def offer(entry: tuple[str, Any]) -> bool:
        """Hand ``entry`` over; False once the consumer has gone."""
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
            offer(("done", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(("error", exc))

    thread = threading.Thread(target=pump, name="ray-results", daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, value = handoff.get(timeout=seconds)
            except queue.Empty:
                raise ClusterError(_stalled(seconds)) from None
            if kind == "done":
                return
            if kind == "error":
                if type(value).__name__ == "GetTimeoutError":  # Ray Data's actors never started
                    raise ClusterError(_stalled(seconds)) from value
                raise value
            yield value
    finally:
        stop.set()


def _stalled(seconds: float) -> str:
    import ray

    total = ray.cluster_resources()  # type: ignore[no-untyped-call]
    free = ray.available_resources()  # type: ignore[no-untyped-call]
    return (
        f"no embeddings came back from the Ray cluster for {seconds:.0f} s (cluster resources "
        f"{total}, available {free}); committed work is kept, "
        "run the command again when the cluster has free CPUs"
    )
