"""End to end with a real pretrained backbone on real photos (scikit-image's samples)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike import Library
from lookalike.embed.imagenet import imagenet_classes

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def photo_library(tmp_path_factory):
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "astronaut", "coffee", "rocket", "camera", "coins", "hubble_deep_field"):
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.png")
    chelsea = Image.fromarray(data.chelsea())
    # the same cat, smaller and re-encoded as JPEG, stored rotated with an EXIF orientation tag
    rotated = chelsea.resize((225, 150)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: rotate 90° clockwise to display upright
    rotated.save(folder / "chelsea-copy.jpg", quality=85, exif=exif)
    lib = Library.create(tmp_path_factory.mktemp("lib") / "photos.lookalike", backbone="efficientnet-lite0")
    lib.add([folder])
    yield lib
    lib.close()


def image_id(lib, name):
    return lib.catalog.query("SELECT image_id FROM catalog WHERE path LIKE ?", (f"%/{name}",))[0][0]


@pytest.mark.slow
def test_chelsea_is_stored_with_cat_classes(photo_library):
    rows = photo_library.catalog.query(
        "SELECT class_index, probability FROM image_classes WHERE image_id = ? ORDER BY rank",
        (image_id(photo_library, "chelsea.png"),),
    )
    assert len(rows) == 5
    assert rows[0][0] in CAT_CLASSES, imagenet_classes()[rows[0][0]]
    assert rows[0][1] >= rows[1][1]


@pytest.mark.slow
def test_nearest_image_to_chelsea_is_its_rotated_copy(photo_library):
    ids, vectors = photo_library.embeddings()
    unit = np.asarray(vectors) / np.linalg.norm(vectors, axis=1, keepdims=True)
    query = list(ids).index(image_id(photo_library, "chelsea.png"))
    similarity = unit @ unit[query]
    similarity[query] = -1
    nearest = ids[int(np.argmax(similarity))]
    assert nearest == image_id(photo_library, "chelsea-copy.jpg")
    assert similarity.max() > 0.8
