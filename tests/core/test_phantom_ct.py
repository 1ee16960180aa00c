"""The phantom CT: surfaces come back where the meshes are, tissues have their HU, files round-trip."""

from __future__ import annotations

import time

import numpy as np
import pytest

from medface.errors import OutputError, ParameterError
from medface.phantom.shape import invert
from medface.phantom import ct

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _rotation(axis: str, degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


OBLIQUE = _rotation("z", 20) @ _rotation("x", 10)  # columns: the index axes in LPS


@pytest.fixture(scope="module")
def head():
    from medface.phantom.head import make_head, mean_subject

    return make_head(mean_subject("F"))


@pytest.fixture(scope="module")
def template():
    from medface.phantom.template import get_template

    return get_template()


@pytest.fixture(scope="module")
def oblique(head):
    """A 2 mm CT on axes turned 20 degrees about z and 10 about x."""
    return ct.head_ct(head, spacing=2.0, direction=OBLIQUE, seed=0)


# helpers ------------------------------------------------------------------------------------
def _to_lps(volume, verts_kji: np.ndarray) -> np.ndarray:
    return volume.index_to_physical(verts_kji[:, ::-1])


def bone_surface(volume, level: float = ct.BONE_THRESHOLD_HU):
    """The bone iso-surface, without the boundaries of the cancellous cores.

    The level midway between soft tissue and cortical bone also separates cortical from
    cancellous bone inside the bone. Voxels below the level that touch no voxel of soft tissue,
    fat, brain or air (< 200 HU) can only be cancellous bone (a voxel in the partial-volume
    ramp of the outer surface always has such a neighbour), so they are raised to cortical
    bone before marching cubes.
    """
    from scipy.ndimage import binary_dilation
    from skimage.measure import marching_cubes

    a = volume.array.astype(np.float32)
    low = a < 200
    interior = ~low & (a < level) & ~binary_dilation(low)
    a[interior] = ct.TISSUE_HU["cortical_bone"]
    verts, faces, _, _ = marching_cubes(a, level=level)
    return _to_lps(volume, verts), faces


def skin_surface(volume, level: float = ct.SKIN_THRESHOLD_HU):
    """The air / soft-tissue iso-surface: its largest connected piece (the outer skin)."""
    import trimesh
    from skimage.measure import marching_cubes

    verts, faces, _, _ = marching_cubes(volume.array.astype(np.float32), level=level)
    parts = trimesh.Trimesh(_to_lps(volume, verts), faces, process=False).split(only_watertight=False)
    big = max(parts, key=lambda p: len(p.faces))
    return np.asarray(big.vertices), np.asarray(big.faces)


def distances(points: np.ndarray, meshes, n: int = 4000, seed: int = 0) -> np.ndarray:
    """Exact distances from ``n`` of ``points`` to the union of ``meshes`` ((vertices, faces) pairs)."""
    import trimesh

    verts, faces, offset = [], [], 0
    for v, f in meshes:
        verts.append(v)
        faces.append(np.asarray(f) + offset)
        offset += len(v)
    mesh = trimesh.Trimesh(np.vstack(verts), np.vstack(faces), process=False)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(points), min(n, len(points)), replace=False)
    _, d, _ = trimesh.proximity.closest_point(mesh, points[pick])
    return d


def exact_fields(head, template, points: np.ndarray, names) -> dict:
    """Template fields at subject points through the exact inverse warps."""
    x, _ = invert(head.warp.forward, points, head.warp.inverse(points))
    out = {name: template.sample_field(name, x) for name in names if name not in ("skin",)}
    if "skin" in names:
        xs, _ = invert(head.skin_forward, points, x)
        out["skin"] = template.sample_field("skin", xs)
    return out


def voxel_points(volume, n: int, seed: int = 1):
    """``n`` random voxels: their [k, j, i] indices and LPS centres."""
    rng = np.random.default_rng(seed)
    kji = np.stack([rng.integers(0, s, n) for s in volume.array.shape], axis=1)
    return kji, volume.index_to_physical(kji[:, ::-1].astype(float))


def check_surfaces(head, volume, factor: float = 0.5):
    voxel = float(np.mean(volume.spacing))
    bv, _ = bone_surface(volume)
    d_bone = distances(bv, [head.meshes["cranium"], head.meshes["mandible"]])
    sv, _ = skin_surface(volume)
    d_skin = distances(sv, [head.meshes["skin"]])
    assert d_bone.mean() < factor * voxel, (d_bone.mean(), np.percentile(d_bone, [50, 95]))
    assert np.median(d_bone) < 0.25 * voxel
    assert d_skin.mean() < factor * voxel, (d_skin.mean(), np.percentile(d_skin, [50, 95]))
    assert np.median(d_skin) < 0.25 * voxel
    return d_bone, d_skin


# surfaces -----------------------------------------------------------------------------------
def test_surfaces_come_back_on_the_meshes_oblique(head, oblique):
    d_bone, d_skin = check_surfaces(head, oblique)
    # in fact far better than half a voxel (about 0.2 mm and 0.06 mm at 2 mm voxels)
    assert d_bone.mean() < 0.4 and d_skin.mean() < 0.2


def test_skin_comes_back_everywhere(head, oblique):
    """From the mesh to the CT's skin surface too: no part of the skin is lost."""
    sv, sf = skin_surface(oblique)
    d = distances(head.meshes["skin"][0], [(sv, sf)])
    assert d.mean() < 0.5 * 2.0
    assert np.percentile(d, 95) < 0.5


def test_inverse_maps_are_accurate(head, template):
    """The interpolated inverse maps (with the repair of flagged cells) match the exact inverse."""
    spacing = np.array([2.0, 2.0, 2.0])
    q = head.meshes["skin"][0] @ OBLIQUE
    lo = np.floor((q.min(axis=0) - 10) / spacing) * spacing
    n = (np.ceil((q.max(axis=0) + 10 - lo) / spacing) + 1).astype(int)
    axes = [lo[a] + spacing[a] * np.arange(n[a]) for a in range(3)]
    maps = ct._InverseMaps(head, template, OBLIQUE, axes, ct.COARSE_MM, ct.MAP_TOLERANCE_MM)
    rng = np.random.default_rng(3)
    errors = {"bone": [], "skin": []}
    for k in rng.choice(n[2], 8, replace=False):
        rigid = maps.rigid(k, k + 1)
        points = maps.to_head(rigid)
        flagged = maps.flagged_voxels(k, k + 1)
        for which in errors:
            approx = rigid + maps.interpolate(which, k, k + 1)[:, :3]
            approx[flagged] = maps.repair(which, approx[flagged], rigid[flagged])
            exact, residual = invert(maps.forward[which], points, maps.to_head(approx), tol=1e-5)
            exact = maps.to_design(exact)
            inside = (template.fields["skin"].sample(exact) < 0) & (residual < 1e-3)
            errors[which].append(np.linalg.norm(exact - approx, axis=1)[inside])
    for which, e in errors.items():
        e = np.concatenate(e)
        assert len(e) > 1000
        assert e.mean() < 0.02, which
        assert np.percentile(e, 99) < 0.1, which


# values -------------------------------------------------------------------------------------
def test_tissue_values(head, template, oblique):
    a = oblique.array
    assert a.dtype == np.int16 and oblique.units == "HU"
    corner = a[:6, :6, :6].astype(float)
    assert abs(corner.mean() + 1000) < 5 and 6 < corner.std() < 14  # air with 10 HU noise
    kji, points = voxel_points(oblique, 120_000)
    # and every voxel around the centres of the eyes
    from medface.phantom.skin import EYE_CENTRE, EYE_RADIUS

    centres = np.array([EYE_CENTRE, EYE_CENTRE * [-1, 1, 1]]) @ template.frame[:3, :3].T + template.frame[:3, 3]
    for c in head.warp.forward(centres):
        k, j, i = np.meshgrid(*(np.arange(s) for s in a.shape), indexing="ij", sparse=True)
        ijk = oblique.physical_to_index(c[None])[0]
        r = (EYE_RADIUS - 3) / 2.0
        near = np.argwhere((i - ijk[0]) ** 2 + (j - ijk[1]) ** 2 + (k - ijk[2]) ** 2 < r * r)
        kji = np.vstack([kji, near])
        points = np.vstack([points, oblique.index_to_physical(near[:, ::-1].astype(float))])
    f = exact_fields(head, template, points, ("cranium", "mandible", "brain", "eyes", "teeth", "support", "skin"))
    hu = a[tuple(kji.T)].astype(float)
    brain = hu[f["brain"] < -8]
    assert len(brain) > 1000 and abs(brain.mean() - 35) < 2
    eyes = hu[f["eyes"] < -4]
    assert len(eyes) > 100 and abs(eyes.mean() - 10) < 3
    vault = points[:, 2] > 40
    shell = hu[vault & (f["cranium"] > -1.2) & (f["cranium"] < -0.6)]
    assert len(shell) > 50 and np.mean(shell > 1000) > 0.98  # the cortex of the vault
    diploe = hu[vault & (f["cranium"] < -3.5)]
    if len(diploe) > 20:
        assert abs(np.median(diploe) - 350) < 30
    teeth = hu[f["teeth"] < -1.5]
    assert len(teeth) > 5 and np.median(teeth) > 2000
    outside = hu[f["skin"] > 3]
    assert abs(outside.mean() + 1000) < 3
    clear = np.all([f[k] > 3 for k in ("cranium", "mandible", "brain", "eyes", "teeth")], axis=0)
    soft = hu[clear & (f["support"] < -3) & (f["skin"] < -3)]  # muscles and fat pads under the skin
    assert len(soft) > 100 and abs(np.median(soft) - 40) < 5
    inside = hu[(f["skin"] < -1) & (f["cranium"] > 2) & (f["brain"] > 2) & (f["eyes"] > 2)]
    fat = np.mean((inside > -120) & (inside < -60))
    assert 0.02 < fat < 0.6  # there is a subcutaneous fat layer, but not everywhere


def test_geometry_and_metadata(head, oblique):
    assert np.allclose(oblique.direction, OBLIQUE)
    assert oblique.spacing == (2.0, 2.0, 2.0)
    ijk = oblique.physical_to_index(head.meshes["skin"][0])
    assert ijk.min() >= 10 / 2.0 - 1.01
    assert np.all(ijk.max(axis=0) <= np.array(oblique.shape_ijk) - 1 - (10 / 2.0 - 1.01))
    md = oblique.metadata
    assert md["synthetic"] is True and "synthetic phantom" in md["description"]
    assert md["seed"] == 0 and md["tissue_hu"]["brain"] == 35.0 and md["tissue_hu"]["air"] == -1000.0
    # the CT's tissue labels come from inverting the subject's warp: off by at most 0.05 mm (a
    # 40th of a voxel), or the CT's surfaces would not lie where the meshes are
    assert md["inverse_residual_mm"] < 0.05 and md["subject"]["sex"] == "F"


def test_seed_determinism(head, oblique):
    again = ct.head_ct(head, spacing=2.0, direction=OBLIQUE, seed=0)
    other = ct.head_ct(head, spacing=2.0, direction=OBLIQUE, seed=1)
    assert np.array_equal(again.array, oblique.array)
    assert again.origin == oblique.origin and np.array_equal(again.direction, oblique.direction)
    assert not np.array_equal(other.array, oblique.array)
    diff = other.array.astype(float) - oblique.array.astype(float)
    assert abs(diff.mean()) < 0.5 and 10 * np.sqrt(2) * 0.9 < diff.std() < 10 * np.sqrt(2) * 1.1  # only noise


def test_anisotropic_spacing_and_tissue_override(head):
    vol = ct.head_ct(head, spacing=(3.0, 2.5, 4.0), noise_hu=0, tissue_hu={"brain": 30})
    assert vol.spacing == (3.0, 2.5, 4.0) and vol.metadata["tissue_hu"]["brain"] == 30.0
    assert (vol.array == 30).sum() > 1000
    assert vol.array.max() > 2000 and vol.array.min() == -1000


def test_parameter_errors(head):
    for kwargs in ({"spacing": 0}, {"spacing": (1.0, 2.0)}, {"spacing": -1}, {"noise_hu": -1},
                   {"direction": np.ones((3, 3))}, {"direction": np.eye(2)}, {"margin_mm": np.nan},
                   {"tissue_hu": {"bone": 1000}}, {"coarse_mm": 0}, {"seed": 1.5}, {"seed": -1}):
        with pytest.raises(ParameterError):
            ct.head_ct(head, **kwargs)


# files --------------------------------------------------------------------------------------
def test_write_ct_round_trip_and_bytes(head, tmp_path):
    from medface.io import read_volume

    vol = ct.head_ct(head, spacing=(3.0, 3.0, 4.0), direction=OBLIQUE, seed=2)
    first = ct.write_ct(vol, tmp_path / "a", uid_seed="phantom-test")
    time.sleep(1.1)  # a clock-dependent header (gzip mtime, DICOM dates) would now differ
    second = ct.write_ct(vol, tmp_path / "b", uid_seed="phantom-test")
    assert first["nifti"].read_bytes() == second["nifti"].read_bytes()
    files_a = sorted(p.name for p in first["dicom"].iterdir())
    assert files_a == sorted(p.name for p in second["dicom"].iterdir()) and len(files_a) == vol.array.shape[0]
    for name in files_a:
        assert (first["dicom"] / name).read_bytes() == (second["dicom"] / name).read_bytes()

    nii = read_volume(first["nifti"])
    assert np.array_equal(nii.array, vol.array)
    assert np.allclose(nii.origin, vol.origin, atol=1e-3) and np.allclose(nii.spacing, vol.spacing, atol=1e-5)
    assert np.allclose(nii.direction, vol.direction, atol=1e-5)
    dcm = read_volume(first["dicom"])
    assert dcm.units == "HU" and dcm.metadata.get("modality") == "CT"
    assert np.abs(dcm.array.astype(float) - vol.array).max() <= 0.5  # within rounding
    assert np.allclose(dcm.origin, vol.origin, atol=1e-3) and np.allclose(dcm.spacing, vol.spacing, atol=1e-4)
    assert np.allclose(dcm.direction, vol.direction, atol=1e-5)

    only = ct.write_ct(vol, tmp_path / "c", dicom=False)
    assert set(only) == {"nifti"} and not (tmp_path / "c" / "dicom").exists()
    with pytest.raises(OutputError):
        ct.write_ct(vol, tmp_path / "a", uid_seed="phantom-test")  # refuses to overwrite
    with pytest.raises(OutputError):
        ct.write_ct(vol, tmp_path / "a", nifti=False, uid_seed="phantom-test")
    ct.write_ct(vol, tmp_path / "a", uid_seed="phantom-test", overwrite=True)


# slow ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_surfaces_at_1mm(head):
    vol = ct.head_ct(head, spacing=1.0, seed=0)
    d_bone, d_skin = check_surfaces(head, vol)
    assert d_bone.mean() < 0.3 and d_skin.mean() < 0.15


@pytest.mark.slow
def test_blur_keeps_surfaces(head):
    vol = ct.head_ct(head, spacing=2.0, direction=OBLIQUE, blur_mm=0.8, seed=0)
    check_surfaces(head, vol)


@pytest.mark.slow
def test_speed_at_1_5mm(head):
    start = time.perf_counter()
    vol = ct.head_ct(head, spacing=1.5, seed=0)
    elapsed = time.perf_counter() - start
    assert vol.array.size > 2_000_000
    assert elapsed < 30, f"a 1.5 mm head CT took {elapsed:.1f} s"
