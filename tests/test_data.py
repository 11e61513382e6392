"""KMNIST loading, verification, splits, transforms and the DataLoaders, on synthetic IDX files."""
import hashlib
import shutil

import pytest
import torch

import hw3.data as data
import hw3.kmnist as kmnist
from conftest import N_TEST, N_TRAIN, find_real_kmnist

N_FIT = N_TRAIN - 10_000  # the synthetic training split left after the 10,000 validation images

# The homework's split of KMNIST's 60,000 training images, pinned by value: the first and last validation indices
# and a digest of all of them (little-endian int64 bytes). A change of seed or of the random stream changes them.
VAL_HEAD, VAL_TAIL, TRAIN_HEAD = [23164, 52278, 39108, 40146, 52516], [19340, 40908, 51872], [19836, 27788, 30123, 50548, 35950]
VAL_SHA256 = "5e5f8b1365dea799a0b9901286278b32fbf55bdeca1916bc8a022285132bff24"
TRAIN_SHA256 = "962c8e4a13218682c7da88d59e194eb75108d2a24f9ed7151efa657332991fc9"


def _sha256(indices: torch.Tensor) -> str:
    return hashlib.sha256(indices.numpy().astype("<i8").tobytes()).hexdigest()


def test_split_of_60000_is_pinned_by_value():
    tr, va = data.split_indices(60_000, n_val=10_000, seed=411)
    assert va[:5].tolist() == VAL_HEAD and va[-3:].tolist() == VAL_TAIL and tr[:5].tolist() == TRAIN_HEAD
    assert _sha256(va) == VAL_SHA256 and _sha256(tr) == TRAIN_SHA256
    assert data.split_indices(60_000)[1].tolist() == va.tolist()  # the defaults are the homework's split


def test_split_changes_with_the_seed():
    _, va = data.split_indices(60_000, n_val=10_000, seed=412)
    assert _sha256(va) != VAL_SHA256 and va[:5].tolist() != VAL_HEAD


def test_split_sizes_disjoint_complete_and_repeatable():
    tr, va = data.split_indices(100, n_val=30, seed=3)
    assert len(tr) == 70 and len(va) == 30 and tr.dtype == va.dtype == torch.int64
    assert not set(tr.tolist()) & set(va.tolist())
    assert sorted(tr.tolist() + va.tolist()) == list(range(100))
    tr2, va2 = data.split_indices(100, n_val=30, seed=3)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    assert not torch.equal(va, data.split_indices(100, n_val=30, seed=4)[1])


@pytest.mark.parametrize("n_val", [0, -1, 10, 11])
def test_bad_split_size_is_refused(n_val):
    with pytest.raises(ValueError, match=f"n_val must be between 1 and 9 for 10 samples, got {n_val}"):
        data.split_indices(10, n_val=n_val)
    assert [len(part) for part in data.split_indices(10, n_val=1)] == [9, 1]  # the bounds 1 and n - 1 are valid
    assert [len(part) for part in data.split_indices(10, n_val=9)] == [1, 9]


def test_splits_of_the_files_sizes_and_disjoint(fake_root):
    s = data.kmnist_splits(data_dir=fake_root)
    assert [len(s.images[k]) for k in ("train", "val", "test")] == [N_FIT, 10_000, N_TEST]
    assert [len(s.labels[k]) for k in ("train", "val", "test")] == [N_FIT, 10_000, N_TEST]
    raw = data.load_kmnist(fake_root)
    tr, va = data.split_indices(N_TRAIN)
    assert torch.equal(s.images["val"], raw["train_images"][va]) and torch.equal(s.labels["val"], raw["train_labels"][va])
    assert torch.equal(s.images["train"], raw["train_images"][tr]) and torch.equal(s.images["test"], raw["test_images"])


def test_train_subset_takes_the_first_images_of_the_training_split(fake_root):
    full, sub = data.kmnist_splits(), data.kmnist_splits(train_subset=37)
    assert torch.equal(sub.images["train"], full.images["train"][:37]) and torch.equal(sub.labels["train"], full.labels["train"][:37])
    assert torch.equal(sub.images["val"], full.images["val"])  # validation and test untouched
    assert len(data.kmnist_splits(train_subset=1).labels["train"]) == 1
    assert len(data.kmnist_splits(train_subset=N_FIT).labels["train"]) == N_FIT


@pytest.mark.parametrize("bad", [-5, 0, N_FIT + 1])
def test_train_subset_outside_1_to_n_is_refused_naming_the_value(fake_root, bad):
    with pytest.raises(ValueError, match=rf"train_subset must be None \(all\) or between 1 and {N_FIT}, got {bad}$"):
        data.kmnist_splits(train_subset=bad)


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("HW3_DATA_DIR", raising=False)
    assert kmnist.resolve_data_dir() == kmnist.DEFAULT_DATA_DIR.resolve()
    monkeypatch.setenv("HW3_DATA_DIR", str(tmp_path))
    assert kmnist.resolve_data_dir() == tmp_path.resolve()
    assert kmnist.resolve_data_dir(tmp_path / "x") == (tmp_path / "x").resolve()


def test_transform_dtype_shape_range_and_train_only_statistics(fake_root):
    s = data.kmnist_splits(data_dir=fake_root)
    x = s.tensors("val")[:5]
    assert x.dtype == torch.float32 and x.shape == (5, 1, 28, 28)
    lo, hi = (0 - s.mean) / s.std, (1 - s.mean) / s.std
    assert x.min() >= lo - 1e-6 and x.max() <= hi + 1e-6
    train = s.images["train"].double() / 255
    assert s.mean == pytest.approx(float(train.mean())) and s.std == pytest.approx(float(train.std()))
    full = s.tensors("train")
    assert abs(float(full.mean())) < 1e-4 and float(full.std()) == pytest.approx(1.0, abs=1e-4)
    torch.testing.assert_close(x[0, 0], (s.images["val"][0].float() / 255 - s.mean) / s.std)


def test_random_permutation_semantics():
    p = data.RandomPermutation(784, seed=3)
    img = torch.arange(784.0).view(1, 28, 28)
    out = p(img)
    assert out.shape == img.shape
    assert sorted(out.flatten().tolist()) == img.flatten().tolist()  # a permutation: nothing lost
    assert not torch.equal(out, img)
    assert torch.equal(out.flatten(), img.flatten()[p.reindex])  # pixel i of the output is pixel reindex[i]
    assert torch.equal(p(img), out)  # fixed at construction
    assert torch.equal(data.RandomPermutation(784, seed=3).reindex, p.reindex)  # seedable
    assert not torch.equal(data.RandomPermutation(784, seed=4).reindex, p.reindex)
    with pytest.raises(AssertionError, match="expected 784 pixels, got 100"):
        p(torch.zeros(1, 10, 10))
    assert data.RandomPermutation(1).reindex.tolist() == [0]  # one pixel, and no seed: valid
    assert sorted(data.RandomPermutation(5).reindex.tolist()) == [0, 1, 2, 3, 4]


def test_one_permutation_shared_by_all_splits(fake_root):
    perm = data.RandomPermutation(784, seed=5)
    plain = data.kmnist_splits(data_dir=fake_root)
    permuted = data.kmnist_splits(perm, data_dir=fake_root)
    loaders = data.make_loaders(permuted, batch_size=64)
    for split in ("train", "val", "test"):
        x_plain = plain.tensors(split)
        want = x_plain.flatten(1)[:, perm.reindex].view_as(x_plain)
        assert torch.allclose(loaders[split].dataset.tensors[0], want)


@pytest.mark.parametrize("permuted", [False, True])
def test_dataloaders_and_standard_route_yield_the_same_samples(fake_root, permuted):
    perm = data.RandomPermutation(784, seed=7) if permuted else None
    std = data.standard_loaders(fake_root, batch_size=64, permutation=perm)
    fast = data.make_loaders(data.kmnist_splits(perm, data_dir=fake_root), batch_size=64)
    assert all(isinstance(loader, torch.utils.data.DataLoader) for loader in fast.values())
    for split in ("val", "test"):  # unshuffled: batch for batch
        xs, ys = zip(*std[split])
        fx, fy = zip(*fast[split])
        torch.testing.assert_close(torch.cat(xs), torch.cat(fx), rtol=0, atol=1e-6)
        assert torch.equal(torch.cat(ys), torch.cat(fy))
    assert [len(y) for _, y in std["test"]] == [64] * (N_TEST // 64) + [N_TEST % 64]
    assert isinstance(std["train"].sampler, torch.utils.data.RandomSampler)  # shuffled: train only
    assert all(isinstance(std[k].sampler, torch.utils.data.SequentialSampler) for k in ("val", "test"))
    assert all(loader.num_workers == 0 for loader in std.values())
    # the shuffled training split: the same samples in the dataset's order
    x0, y0 = std["train"].dataset[0]
    train_x, train_y = fast["train"].dataset.tensors
    torch.testing.assert_close(x0, train_x[0], rtol=0, atol=1e-6)
    assert y0 == int(train_y[0]) and len(std["train"].dataset) == len(train_x)


def _epoch(loader):
    return [(x, y) for x, y in loader]


def test_an_explicit_data_dir_wins_over_the_environment(fake_root, tmp_path, monkeypatch):
    monkeypatch.setenv("HW3_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(kmnist, "_download", lambda root: pytest.fail(f"tried to download into {root}"))
    assert len(data.kmnist_splits(data_dir=fake_root).labels["test"]) == N_TEST
    std = data.standard_loaders(fake_root)  # and its default batch size is the homework's, 64
    assert len(std["test"].dataset) == N_TEST and [len(y) for _, y in std["test"]][:2] == [64, 64]


def test_make_loaders_defaults_are_batches_of_64_seed_0_and_evaluation_batches_of_500(fake_root):
    splits = data.kmnist_splits(train_subset=150)
    default, explicit = data.make_loaders(splits), data.make_loaders(splits, 64, "cpu", seed=0, eval_batch_size=500)
    first = _epoch(default["train"])
    assert [len(y) for _, y in first] == [64, 64, 22] and [len(y) for _, y in default["val"]] == [500] * 20
    for a, b in zip(first, _epoch(explicit["train"])):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_every_split_is_put_on_the_device_asked_for(fake_root):
    splits = data.kmnist_splits(train_subset=150)
    assert splits.tensors("val", "meta").device.type == "meta"
    for loader in data.make_loaders(splits, device="meta").values():
        assert [t.device.type for t in loader.dataset.tensors] == ["meta", "meta"]


def test_training_batches_reshuffle_every_epoch_reproducibly_and_cover_every_sample_once(fake_root):
    splits = data.kmnist_splits(train_subset=150)
    loaders = data.make_loaders(splits, batch_size=64, seed=1)
    x, y = loaders["train"].dataset.tensors
    assert torch.equal(y, splits.labels["train"])
    e1, e2 = _epoch(loaders["train"]), _epoch(loaders["train"])
    assert len(loaders["train"]) == 3 and [len(b[1]) for b in e1] == [64, 64, 22]
    for bx, by in e1:
        assert bx.shape[1:] == (1, 28, 28) and bx.dtype == torch.float32 and by.dtype == torch.int64  # cross_entropy needs int64 targets
        assert bx.device.type == "cpu" and by.device.type == "cpu"
    # the first epoch is a randperm drawn from the CPU generator seeded with `seed`, cut into batches
    perm = torch.randperm(150, generator=torch.Generator().manual_seed(1))
    for i, (bx, by) in enumerate(e1):
        assert torch.equal(bx, x[perm[64 * i:64 * (i + 1)]]) and torch.equal(by, y[perm[64 * i:64 * (i + 1)]])
    for epoch in (e1, e2):  # every sample exactly once per epoch (rows of x are distinct images)
        seen = torch.cat([b[0] for b in epoch]).flatten(1)
        assert sorted(map(tuple, seen.tolist())) == sorted(map(tuple, x.flatten(1).tolist()))
    assert not torch.equal(torch.cat([b[0] for b in e1]), torch.cat([b[0] for b in e2]))  # reshuffled
    again = data.make_loaders(splits, batch_size=64, seed=1)["train"]
    for a, b in zip([*e1, *e2], [*_epoch(again), *_epoch(again)]):  # the same seed: the same batches, epoch after epoch
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    other = data.make_loaders(splits, batch_size=64, seed=2)["train"]
    assert not torch.equal(torch.cat([b[0] for b in e1]), torch.cat([b[0] for b in _epoch(other)]))


def test_evaluation_loaders_are_in_order_on_the_device(fake_root):
    splits = data.kmnist_splits(train_subset=150)
    loaders = data.make_loaders(splits, batch_size=64, device="cpu", eval_batch_size=400)
    assert set(loaders) == {"train", "val", "test", "train_eval"}
    for name, split, sizes in (("val", "val", [400] * 25), ("test", "test", [400, 400, 200]), ("train_eval", "train", [150])):
        batches = _epoch(loaders[name])
        assert [len(y) for _, y in batches] == sizes
        xs, ys = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        assert xs.shape == (len(splits.labels[split]), 1, 28, 28) and xs.dtype == torch.float32 and ys.dtype == torch.int64
        assert xs.device.type == "cpu" and ys.device.type == "cpu"
        assert torch.equal(xs, splits.tensors(split)) and torch.equal(ys, splits.labels[split])
        again = _epoch(loaders[name])  # the same order every time
        assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again))


def test_bad_batch_size_is_refused(fake_root):
    with pytest.raises(ValueError, match="batch_size"):
        data.make_loaders(data.kmnist_splits(train_subset=10), batch_size=0)


def test_missing_files_without_download_give_one_clear_error(tmp_path):
    with pytest.raises(kmnist.DataUnavailableError) as e:
        kmnist.ensure_kmnist(tmp_path, download=False)
    msg = str(e.value)
    for name, md5 in kmnist.RAW_MD5.items():
        assert name in msg and md5 in msg
    assert str(tmp_path / "KMNIST" / "raw") in msg and "download disabled" in msg


def test_failing_download_retries_then_explains(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(kmnist.datasets.KMNIST, "mirrors", ["http://127.0.0.1:9/"])  # closed local port: no network
    monkeypatch.setattr(kmnist.time, "sleep", lambda s: calls.append(s))
    with pytest.raises(kmnist.DataUnavailableError, match="download failed 3 times") as e:
        kmnist.ensure_kmnist(tmp_path, download=True)
    assert calls == [2, 4]
    assert "t10k-labels-idx1-ubyte.gz" in str(e.value)
    assert not any(p.suffix == ".gz" for p in (tmp_path / "KMNIST" / "raw").glob("*"))  # no partial file left


def test_corrupted_file_detected_and_set_aside(fake_md5, tmp_path, monkeypatch):
    src, md5 = fake_md5
    monkeypatch.setattr(kmnist, "RAW_MD5", md5)
    shutil.copytree(src, tmp_path, dirs_exist_ok=True)
    kmnist.ensure_kmnist(tmp_path, download=False)  # verified once: the md5 is remembered for this file version...
    f = tmp_path / "KMNIST" / "raw" / "train-labels-idx1-ubyte"
    blob = bytearray(f.read_bytes())  # ...and the same-size overwrite below must still be caught
    blob[100] ^= 0xFF
    f.write_bytes(bytes(blob))
    with pytest.raises(kmnist.DataUnavailableError, match="train-labels-idx1-ubyte.*corrupt"):
        kmnist.ensure_kmnist(tmp_path, download=False)
    assert not f.exists() and f.with_name(f.name + ".corrupt").exists()  # never read as valid again
    with pytest.raises(kmnist.DataUnavailableError, match="missing"):
        kmnist.ensure_kmnist(tmp_path, download=False)


def test_truncated_file_is_caught(fake_md5, tmp_path, monkeypatch):
    src, md5 = fake_md5
    shutil.copytree(src, tmp_path, dirs_exist_ok=True)
    f = tmp_path / "KMNIST" / "raw" / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:5000])
    import hashlib
    # even if a manifest vouched for the truncated file, the IDX parser refuses it
    monkeypatch.setattr(kmnist, "RAW_MD5", {**md5, f.name: hashlib.md5(f.read_bytes()).hexdigest()})
    with pytest.raises(RuntimeError, match=r"shape '\[1000, 28, 28\]' is invalid for input of size 4984"):
        data.load_kmnist(tmp_path)  # 5000 bytes: a 16-byte header and 4984 of the 784,000 pixels


REAL = find_real_kmnist()


@pytest.mark.skipif(REAL is None, reason="real KMNIST not found (set HW3_DATA_DIR to a folder holding KMNIST/raw/)")
def test_real_kmnist_counts_and_md5():
    assert not kmnist._bad_files(REAL / "KMNIST" / "raw")  # official md5s
    raw = data.load_kmnist(REAL)
    assert raw["train_images"].shape == (60_000, 28, 28) and raw["test_images"].shape == (10_000, 28, 28)
    assert torch.bincount(raw["train_labels"]).tolist() == [6000] * 10
    assert torch.bincount(raw["test_labels"]).tolist() == [1000] * 10
    s = data.kmnist_splits(data_dir=REAL)
    assert [len(s.labels[k]) for k in ("train", "val", "test")] == [50_000, 10_000, 10_000]
