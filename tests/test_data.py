"""KMNIST loading, verification, splits, transforms and the DataLoaders, on synthetic IDX files."""
import shutil

import pytest
import torch

import hw3.data as data
import hw3.kmnist as kmnist
from conftest import N_TEST, N_TRAIN, find_real_kmnist


def test_splits_sizes_stratified_disjoint_and_deterministic(fake_root):
    s = data.kmnist_splits(data_dir=fake_root)
    assert len(s.images["train"]) == N_TRAIN - 10_000 and len(s.images["val"]) == 10_000 and len(s.images["test"]) == N_TEST
    labels = data.load_kmnist(fake_root)["train_labels"]
    tr, va = data.split_indices(labels)
    assert len(set(tr.tolist()) & set(va.tolist())) == 0
    assert sorted(tr.tolist() + va.tolist()) == list(range(N_TRAIN))
    assert torch.bincount(labels[va], minlength=10).tolist() == [1000] * 10  # stratified
    tr2, va2 = data.split_indices(labels)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    _, va3 = data.split_indices(labels, seed=1)
    assert not torch.equal(va, va3)


def test_split_is_machine_independent():
    # the CPU generator's stream is fixed: these indices are what every machine gets for seed 411
    labels = torch.arange(40) % 4
    tr, va = data.split_indices(labels, n_val=8, seed=411)
    assert torch.bincount(labels[va]).tolist() == [2, 2, 2, 2]
    again = data.split_indices(labels.clone(), n_val=8, seed=411)[1]
    assert torch.equal(va, again)


def test_bad_split_size():
    with pytest.raises(ValueError, match="n_val must be between 1 and 9"):
        data.split_indices(torch.zeros(10, dtype=torch.long), n_val=10)


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("HW3_DATA_DIR", raising=False)
    assert kmnist.resolve_data_dir() == kmnist.DEFAULT_DATA_DIR.resolve()
    monkeypatch.setenv("HW3_DATA_DIR", str(tmp_path))
    assert kmnist.resolve_data_dir() == tmp_path.resolve()
    assert kmnist.resolve_data_dir(tmp_path / "x") == (tmp_path / "x").resolve()


def test_transform_dtype_shape_range_and_train_only_statistics(fake_root):
    s = data.kmnist_splits(data_dir=fake_root)
    x = s.preprocess.batch(s.images["val"][:5])
    assert x.dtype == torch.float32 and x.shape == (5, 1, 28, 28)
    lo, hi = (0 - s.preprocess.mean) / s.preprocess.std, (1 - s.preprocess.mean) / s.preprocess.std
    assert x.min() >= lo - 1e-6 and x.max() <= hi + 1e-6
    train = s.images["train"].double() / 255
    assert s.preprocess.mean == pytest.approx(float(train.mean())) and s.preprocess.std == pytest.approx(float(train.std()))
    full = s.preprocess.batch(s.images["train"])
    assert abs(float(full.mean())) < 1e-4 and float(full.std()) == pytest.approx(1.0, abs=1e-4)


def test_random_permutation_semantics():
    p = data.RandomPermutation(784, seed=3)
    img = torch.arange(784.0).view(1, 28, 28)
    out = p(img)
    assert out.shape == img.shape
    assert sorted(out.flatten().tolist()) == img.flatten().tolist()  # a permutation: nothing lost
    assert not torch.equal(out, img)
    assert torch.equal(p(img), out)  # fixed at construction
    assert torch.equal(data.RandomPermutation(784, seed=3).reindex, p.reindex)  # seedable
    batch = torch.stack([img, 2 * img])
    assert torch.equal(p.batch(batch), torch.stack([p(img), p(2 * img)]))
    with pytest.raises(AssertionError, match="expected 784 pixels, got 100"):
        p(torch.zeros(1, 10, 10))


def test_one_permutation_shared_by_all_splits(fake_root):
    perm = data.RandomPermutation(784, seed=5)
    plain = data.kmnist_splits(data_dir=fake_root)
    permuted = data.kmnist_splits(perm, data_dir=fake_root)
    loaders = data.make_loaders(permuted, batch_size=64)
    for split in ("train", "val", "test"):
        x_plain = plain.preprocess.batch(plain.images[split])
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
    # the shuffled training split: the same samples in the dataset's order
    x0, y0 = std["train"].dataset[0]
    train_x, train_y = fast["train"].dataset.tensors
    torch.testing.assert_close(x0, train_x[0], rtol=0, atol=1e-6)
    assert y0 == int(train_y[0]) and len(std["train"].dataset) == len(train_x)
    ex, ey = zip(*fast["train_eval"])  # the training split in order, for evaluating it
    assert torch.equal(torch.cat(ex), train_x) and torch.equal(torch.cat(ey), train_y)


def test_training_dataloader_reshuffles_each_epoch_reproducibly(fake_root):
    splits = data.kmnist_splits(train_subset=150)
    loaders = data.make_loaders(splits, batch_size=64, seed=1)
    x, y = loaders["train"].dataset.tensors
    e1, e2 = [list(loaders["train"]) for _ in range(2)]
    assert len(loaders["train"]) == 3 and [len(b[1]) for b in e1] == [64, 64, 22]
    order1 = torch.cat([b[1] for b in e1])
    assert sorted(order1.tolist()) == sorted(y.tolist()) and not torch.equal(order1, torch.cat([b[1] for b in e2]))
    # every epoch draws one seeded randperm and cuts it into batches
    perm = torch.randperm(150, generator=torch.Generator().manual_seed(1))
    for i, (bx, by) in enumerate(e1):
        assert torch.equal(bx, x[perm[64 * i:64 * (i + 1)]]) and torch.equal(by, y[perm[64 * i:64 * (i + 1)]])
    again = data.make_loaders(splits, batch_size=64, seed=1)["train"]
    for a, b in zip([*e1, *e2], [*again, *again]):  # the same seed: the same batches, epoch after epoch
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    other = torch.cat([b[1] for b in data.make_loaders(splits, batch_size=64, seed=2)["train"]])
    assert not torch.equal(order1, other)
    with pytest.raises(ValueError, match="positive integer, got 0"):
        data.make_loaders(splits, batch_size=0)


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
    with pytest.raises((AssertionError, RuntimeError, ValueError)):
        data.load_kmnist(tmp_path)


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


def test_tensors_gathers_a_batch_of_rows_and_rejects_unequal_lengths():
    x, y = torch.randn(10, 1, 4, 4), torch.arange(10)
    ds = data.Tensors(x, y)
    index = torch.tensor([3, 0, 7])
    assert len(ds) == 10
    xb, yb = ds[index]
    assert torch.equal(xb, x[index]) and torch.equal(yb, y[index])
    with pytest.raises(ValueError, match=r"equal length, got lengths \[10, 9\]"):
        data.Tensors(x, y[:9])
    with pytest.raises(ValueError, match="equal length"):
        data.Tensors()
