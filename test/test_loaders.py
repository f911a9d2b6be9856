"""Loaders on tiny datasets written in the real on-disk formats in a temporary folder."""

import struct

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from vvhand_core.camera import project_np, uvd_to_xyz
from vvhand_core.crop import crop_depth
from vvhand_core.data.base import DatasetError, HandDataset, collate_frames
from vvhand_core.data.hands2019 import BIGHAND_TO_SKELETON, HANDS2019_INTRINSICS, Hands2019Dataset
from vvhand_core.data.icvl import ICVL_EVAL_INTRINSICS, ICVL_LABEL_INTRINSICS, ICVLDataset
from vvhand_core.data.msra import MSRA_GESTURES, MSRA_INTRINSICS, MSRADataset, read_msra_bin
from vvhand_core.data.nyu import NYU_EVAL_JOINTS, NYU_INTRINSICS, NYUDataset, nyu_depth_name
from vvhand_core.skeletons import HANDS2019_21, ICVL_16, MSRA_21, NYU_14


def _hand_blob(h, w, uv, depth_mm, radius_px):
    """A depth image: a disc of depth_mm at pixel uv, 0 elsewhere (uint16)."""
    vv, uu = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w), np.uint16)
    img[(uu - uv[0]) ** 2 + (vv - uv[1]) ** 2 <= radius_px**2] = depth_mm
    return img


# ----------------------------------------------------------------------------- NYU


def _make_nyu(root, frames=3):
    split = root / "test"
    split.mkdir(parents=True)
    rng = np.random.default_rng(0)
    xyz_cam = np.zeros((3, frames, 36, 3))
    xyz_cam[..., 0] = rng.uniform(-80, 80, (3, frames, 36))
    xyz_cam[..., 1] = rng.uniform(-80, 80, (3, frames, 36))
    xyz_cam[..., 2] = rng.uniform(700, 900, (3, frames, 36))
    xyz_file = xyz_cam.copy()
    xyz_file[..., 1] *= -1  # NYU stores y up
    uvd = np.concatenate([project_np(xyz_cam, NYU_INTRINSICS), xyz_cam[..., 2:]], axis=-1)
    scipy.io.savemat(split / "joint_data.mat", {"joint_xyz": xyz_file, "joint_uvd": uvd})
    depths = []
    for i in range(frames):
        centre = uvd[0, i].mean(axis=0)
        d = _hand_blob(480, 640, centre[:2], 700 + 150 * i, 60)  # > 255: uses G and B
        rgb = np.stack([np.full_like(d, 7), d >> 8, d & 0xFF], axis=-1).astype(np.uint8)
        Image.fromarray(rgb, "RGB").save(split / nyu_depth_name(i))
        depths.append(d)
    return xyz_cam[0][:, list(NYU_EVAL_JOINTS)], uvd[0][:, list(NYU_EVAL_JOINTS)], depths


def test_nyu_reads_kinect1_eval_joints_y_down(tmp_path):
    joints, uvd, depths = _make_nyu(tmp_path)
    ds = NYUDataset(tmp_path, "test")
    assert isinstance(ds, HandDataset)
    assert len(ds) == 3 and ds.skipped == [] and ds.skeleton is NYU_14
    for i in range(3):
        f = ds[i]
        assert f.depth_mm.dtype == np.uint16 and np.array_equal(f.depth_mm, depths[i])
        np.testing.assert_allclose(f.joints_mm, joints[i], atol=1e-3)
        # the camera convention: joints project onto the stored uv with y down
        np.testing.assert_allclose(project_np(f.joints_mm, f.intrinsics), uvd[i][:, :2], atol=1e-3)
        np.testing.assert_allclose(f.meta["joints_uvd"], uvd[i], atol=1e-3)
        assert f.meta["frame_id"] == i and f.meta["source"].endswith(nyu_depth_name(i))
    assert ds.cube_mm(0) == 280.0 and ds.cube_mm(2440) == pytest.approx(280.0 * 5 / 6)
    assert f.intrinsics == NYU_INTRINSICS


def test_nyu_frames_feed_the_crop(tmp_path):
    _make_nyu(tmp_path)
    ds = NYUDataset(tmp_path, "test")
    batch = collate_frames([ds[0], ds[1]])
    assert batch.depth_mm.shape == (2, 480, 640) and batch.k.shape == (2, 4)
    assert batch.joints_mm.shape == (2, 14, 3)
    centre = batch.joints_mm.mean(dim=1)
    centre[:, 2] = torch.tensor([700.0, 850.0])  # the blob's depth
    crop, _ = crop_depth(batch.depth_mm, centre, batch.k)
    assert crop.shape == (2, 176, 176)
    assert (crop > 0).sum() > 1000 and torch.all(crop[crop > 0] >= 700)


def test_nyu_missing_and_corrupt_files(tmp_path):
    _make_nyu(tmp_path)
    missing = tmp_path / "test" / nyu_depth_name(1)
    missing.unlink()
    with pytest.raises(DatasetError, match=nyu_depth_name(1)):
        NYUDataset(tmp_path, "test")
    ds = NYUDataset(tmp_path, "test", on_missing="skip")
    assert len(ds) == 2 and ds.skipped == [(str(missing), "depth image missing")]
    assert ds[1].meta["frame_id"] == 2  # frame ids are kept, not renumbered
    assert "1 skipped" in ds.summary()
    (tmp_path / "test" / nyu_depth_name(2)).write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=nyu_depth_name(2)):
        ds[1]
    scipy.io.savemat(tmp_path / "test" / "joint_data.mat", {"joint_xyz": np.zeros((3, 2, 20, 3))})
    with pytest.raises(DatasetError, match="joint_data.mat"):
        NYUDataset(tmp_path, "test")
    with pytest.raises(DatasetError, match="joint_data.mat"):
        NYUDataset(tmp_path, "train")  # no such split folder


# ----------------------------------------------------------------------------- ICVL


def _make_icvl(root, frames=3):
    test = root / "Testing"
    rng = np.random.default_rng(1)
    lines, uvds, depths = [], [], []
    for i in range(frames):
        rel = f"test seq 1/image_{i:04d}.png"  # a space in the path, on purpose
        uvd = np.stack([rng.uniform(100, 220, 16), rng.uniform(60, 180, 16),
                        rng.uniform(300, 400, 16)], axis=-1)  # fmt: skip
        d = _hand_blob(240, 320, uvd[0, :2], 320 + i, 30)
        path = test / "Depth" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(d).save(path)
        lines.append(rel + " " + " ".join(f"{x:.4f}" for x in uvd.reshape(-1)))
        uvds.append(uvd)
        depths.append(d)
    (test / "test_seq_1.txt").write_text("\n".join(lines) + "\n")
    return test / "test_seq_1.txt", uvds, depths


def test_icvl_reads_labels_and_16bit_png(tmp_path):
    labels, uvds, depths = _make_icvl(tmp_path)
    ds = ICVLDataset(labels)
    assert len(ds) == 3 and ds.skeleton is ICVL_16
    for i in range(3):
        f = ds[i]
        assert np.array_equal(f.depth_mm, depths[i])
        assert f.intrinsics == ICVL_LABEL_INTRINSICS
        np.testing.assert_allclose(
            f.joints_mm, uvd_to_xyz(uvds[i], ICVL_LABEL_INTRINSICS), atol=1e-3
        )
        np.testing.assert_allclose(project_np(f.joints_mm, f.intrinsics), uvds[i][:, :2], atol=1e-3)
    ev = ICVLDataset(labels, intrinsics=ICVL_EVAL_INTRINSICS)[0]
    assert ev.joints_mm[0, 0] != pytest.approx(ds[0].joints_mm[0, 0], abs=1e-4)
    np.testing.assert_allclose(ev.meta["joints_uvd"], uvds[0], atol=1e-3)


def test_icvl_bad_line_and_missing_image(tmp_path):
    labels, _, _ = _make_icvl(tmp_path)
    text = labels.read_text().splitlines()
    text.insert(1, "test seq 1/image_0009.png 1 2 3")
    labels.write_text("\n".join(text) + "\n")
    with pytest.raises(DatasetError, match=r"test_seq_1\.txt:2"):
        ICVLDataset(labels)
    (tmp_path / "Testing" / "Depth" / "test seq 1" / "image_0002.png").unlink()
    ds = ICVLDataset(labels, on_missing="skip")
    assert len(ds) == 2 and len(ds.skipped) == 2
    assert any("image_0002.png" in p for p, _ in ds.skipped)
    with pytest.raises(DatasetError, match="nothere.txt"):
        ICVLDataset(tmp_path / "nothere.txt")


# ----------------------------------------------------------------------------- Hands2019


def _make_hands2019(root, frames=2):
    img_dir = root / "training_images"
    img_dir.mkdir(parents=True)
    rng = np.random.default_rng(2)
    joints_sk = []
    ann, bbs = [], []
    for i in range(frames):
        name = f"image_D{i + 1:08d}.png"
        j = np.stack(
            [rng.uniform(-90, 90, 21), rng.uniform(-90, 90, 21), rng.uniform(350, 450, 21)], axis=-1
        )  # fmt: skip  (skeleton order)
        file_rows = np.zeros_like(j)
        file_rows[list(BIGHAND_TO_SKELETON)] = j  # written in BigHand order
        ann.append(name + " " + " ".join(f"{x:.5f}" for x in file_rows.reshape(-1)))
        bbs.append(f"{name} {100 + i} 80 150 160")
        uv = project_np(j.mean(axis=0), HANDS2019_INTRINSICS)
        Image.fromarray(_hand_blob(480, 640, uv, 400, 50)).save(img_dir / name)
        joints_sk.append(j)
    (root / "training_joint_annotation.txt").write_text("\n".join(ann) + "\n")
    (root / "training_bbs.txt").write_text("\n".join(bbs) + "\n")
    return joints_sk


def test_hands2019_reorders_bighand_joints(tmp_path):
    joints = _make_hands2019(tmp_path)
    ds = Hands2019Dataset(tmp_path / "training_images", tmp_path / "training_joint_annotation.txt",
                          tmp_path / "training_bbs.txt")  # fmt: skip
    assert len(ds) == 2 and ds.skeleton is HANDS2019_21
    for i in range(2):
        f = ds[i]
        np.testing.assert_allclose(f.joints_mm, joints[i], atol=1e-4)
        assert f.meta["bbox"] == (100.0 + i, 80.0, 150.0, 160.0)
        assert f.intrinsics == HANDS2019_INTRINSICS and f.depth_mm.shape == (480, 640)
    # the BigHand file order: row 1 is the thumb root, row 6 the thumb PIP
    assert BIGHAND_TO_SKELETON[HANDS2019_21.index("thumb_mcp")] == 1
    assert BIGHAND_TO_SKELETON[HANDS2019_21.index("thumb_pip")] == 6
    assert BIGHAND_TO_SKELETON[HANDS2019_21.index("index_mcp")] == 2
    assert BIGHAND_TO_SKELETON[HANDS2019_21.index("pinky_tip")] == 20
    raw = Hands2019Dataset(tmp_path / "training_images", tmp_path / "training_joint_annotation.txt",
                           joint_order="skeleton")  # fmt: skip
    assert not np.allclose(raw[0].joints_mm, joints[0])


def test_hands2019_unlabelled_and_errors(tmp_path):
    _make_hands2019(tmp_path)
    unl = Hands2019Dataset(tmp_path / "training_images", bbox_file=tmp_path / "training_bbs.txt")
    assert len(unl) == 2 and unl[0].joints_mm is None and "bbox" in unl[0].meta
    ann = tmp_path / "training_joint_annotation.txt"
    ann.write_text(ann.read_text() + "image_D00000009.png 1 2 3\n")
    with pytest.raises(DatasetError, match="training_joint_annotation.txt:3"):
        Hands2019Dataset(tmp_path / "training_images", ann)
    ds = Hands2019Dataset(tmp_path / "training_images", ann, on_missing="skip")
    assert len(ds) == 2 and len(ds.skipped) == 1
    (tmp_path / "training_images" / "image_D00000002.png").unlink()
    with pytest.raises(DatasetError, match="image_D00000002.png"):
        Hands2019Dataset(tmp_path / "training_images", bbox_file=tmp_path / "training_bbs.txt")
    with pytest.raises(ValueError):
        Hands2019Dataset(tmp_path / "training_images")


# ----------------------------------------------------------------------------- MSRA 2015


def _msra_bin(path, box, values):
    """A *_depth.bin: 6 uint32 (320, 240, left, top, right, bottom) + float32 box rows."""
    left, top, right, bottom = box
    path.write_bytes(struct.pack("<6I", 320, 240, left, top, right, bottom)
                     + np.asarray(values, "<f4").tobytes())


def _make_msra(root, subject="P0", frames_in_first=2):
    """Every gesture folder; gesture "1" holds frames, the others "0" frames."""
    rng = np.random.default_rng(3)
    stored = []
    for g in MSRA_GESTURES:
        folder = root / subject / g
        folder.mkdir(parents=True)
        n = frames_in_first if g == "1" else 0
        rows = [np.stack([rng.uniform(-60, 60, 21), rng.uniform(-60, 60, 21),
                          rng.uniform(-420, -300, 21)], axis=-1) for _ in range(n)]
        (folder / "joint.txt").write_text(
            f"{n}\n" + "".join(" ".join(f"{v:.6f}" for v in r.reshape(-1)) + "\n" for r in rows))
        for i in range(n):
            _msra_bin(folder / f"{i:06d}_depth.bin", (150, 100, 170, 112),
                      np.arange(12 * 20, dtype=np.float32).reshape(12, 20) + 300 + i)
        stored += rows
    return stored


def test_msra_reads_y_up_z_negative_labels_into_the_optical_frame(tmp_path):
    stored = _make_msra(tmp_path)
    # one hand-written line: x 10, y 20 (up), z -300 (towards the scene)
    line = " ".join(["10 20 -300"] * 21)
    (tmp_path / "P0" / "1" / "joint.txt").write_text(f"2\n{line}\n" + " ".join(
        f"{v:.6f}" for v in stored[1].reshape(-1)) + "\n")
    ds = MSRADataset(tmp_path)
    assert isinstance(ds, HandDataset)
    assert len(ds) == 2 and ds.skeleton is MSRA_21 and ds.subjects == ("P0",)
    f = ds[0]
    np.testing.assert_allclose(f.joints_mm, np.tile([10.0, -20.0, 300.0], (21, 1)))
    np.testing.assert_allclose(ds[1].joints_mm, stored[1] * [1, -1, -1], atol=1e-5)
    assert f.intrinsics == MSRA_INTRINSICS and f.depth_mm.dtype == np.float32
    box = f.depth_mm[100:112, 150:170]
    np.testing.assert_array_equal(box, np.arange(240).reshape(12, 20) + 300)
    assert f.depth_mm.sum() == box.sum()  # zero outside the box
    assert f.meta["frame_id"] == "P0/1/000000" and f.meta["bbox"] == (150, 100, 20, 12)
    assert ds[1].depth_mm[100, 150] == 301


def test_msra_frame_order_is_the_community_order(tmp_path):
    _make_msra(tmp_path, "P1", frames_in_first=1)
    _make_msra(tmp_path, "P0", frames_in_first=1)
    folder = tmp_path / "P0" / "IP"
    folder.joinpath("joint.txt").write_text("1\n" + " ".join(["1 2 -300"] * 21) + "\n")
    _msra_bin(folder / "000000_depth.bin", (0, 0, 1, 1), [500.0])
    ds = MSRADataset(tmp_path)
    assert [ds[i].meta["frame_id"] for i in range(3)] == ["P0/1/000000", "P0/IP/000000",
                                                          "P1/1/000000"]
    assert len(MSRADataset(tmp_path, subjects=[1])) == 1
    assert len(MSRADataset(tmp_path, subjects=["P0"])) == 2


def test_msra_bad_files_are_named(tmp_path):
    _make_msra(tmp_path)
    ok = tmp_path / "P0" / "1" / "joint.txt"
    with pytest.raises(DatasetError, match="no subject folder"):
        MSRADataset(tmp_path / "P0")
    with pytest.raises(DatasetError, match="P3"):
        MSRADataset(tmp_path, subjects=["P3"])
    text = ok.read_text()
    ok.write_text(text.replace("2\n", "3\n", 1))
    with pytest.raises(DatasetError, match="says 3 frames, found 2"):
        MSRADataset(tmp_path)
    lines = text.splitlines()
    values = lines[1].split()
    values[2] = values[2].lstrip("-")  # a converted file: the wrist's z positive
    ok.write_text("\n".join([lines[0], " ".join(values), *lines[2:]]) + "\n")
    with pytest.raises(DatasetError, match=r"joint\.txt:2.*z >= 0"):
        MSRADataset(tmp_path)
    ok.write_text(text)
    (tmp_path / "P0" / "1" / "000001_depth.bin").unlink()
    with pytest.raises(DatasetError, match="000001_depth.bin"):
        MSRADataset(tmp_path)
    ds = MSRADataset(tmp_path, on_missing="skip")
    assert len(ds) == 1 and "1 skipped" in ds.summary()
    _msra_bin(tmp_path / "P0" / "1" / "000001_depth.bin", (0, 0, 1, 1), [400.0])
    (tmp_path / "P0" / "Y" / "joint.txt").unlink()
    with pytest.raises(DatasetError, match=r"Y.joint\.txt"):
        MSRADataset(tmp_path)
    bad = tmp_path / "P0" / "1" / "000000_depth.bin"
    bad.write_bytes(bad.read_bytes()[:-4])
    with pytest.raises(DatasetError, match="bytes; the box needs"):
        read_msra_bin(bad)
    _msra_bin(bad, (10, 10, 400, 20), np.zeros(3900))
    with pytest.raises(DatasetError, match="bad box"):
        read_msra_bin(bad)


def test_collate_rejects_mixed_sizes(tmp_path):
    _make_hands2019(tmp_path)
    labels, _, _ = _make_icvl(tmp_path)
    h = Hands2019Dataset(tmp_path / "training_images", tmp_path / "training_joint_annotation.txt")
    with pytest.raises(ValueError, match="image sizes"):
        collate_frames([h[0], ICVLDataset(labels)[0]])
