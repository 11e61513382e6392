"""Device plumbing: the choice, and the CPU preparation of a model (channels_last) changing no output."""
import pytest
import torch

from hw3.device import describe, pick_device, prepare_model
from hw3.models import CNN


def test_pick_device_honours_a_name_and_otherwise_picks_an_available_one():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("mps") == torch.device("mps") and pick_device("cuda:1") == torch.device("cuda", 1)
    assert describe(torch.device("cpu")).startswith("cpu (")


def test_prepare_model_on_the_cpu_uses_channels_last_and_computes_the_same_outputs():
    torch.manual_seed(0)
    plain = CNN()
    prepared = prepare_model(CNN(), "cpu")
    prepared.load_state_dict(plain.state_dict())
    assert prepared[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(8, 1, 28, 28)
    torch.testing.assert_close(prepared(x), plain(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"),
                                                 (False, False, "cpu")])
def test_pick_device_prefers_cuda_then_mps_then_the_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device() == torch.device(expected) and pick_device(None).type == expected
    assert pick_device("cpu") == torch.device("cpu")  # a name given wins over what is available


def test_pick_device_without_an_mps_backend(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delattr(torch.backends, "mps")  # an older torch or a build without it
    assert pick_device() == torch.device("cpu")

