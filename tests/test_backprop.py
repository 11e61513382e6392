"""Part 1: values, stability, gradients (finite differences and autograd), bad input, no loops."""
import ast
import inspect
import warnings

import numpy as np
import pytest

import hw3.backprop as bp
from hw3.backprop import gradient, logistic_loss, predict, stable_logistic_loss
from hw3.gradcheck import relative_error, numerical_gradient

D, K, B = 7, 5, 11


def make(seed=0, scale=1.0, B=B):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, D))
    W = {"w_1": scale * rng.normal(size=(D, K)), "w_2": scale * rng.normal(size=(K, 1))}
    y = rng.integers(0, 2, size=B).astype(float)
    return X, y, W


def test_predict_matches_hand_computation():
    X = np.array([[1.0, 2.0], [0.0, -1.0]])
    W = {"w_1": np.array([[1.0, 0.0, -1.0], [0.5, 1.0, 2.0]]), "w_2": np.array([[1.0], [-2.0], [0.5]])}
    z1, z2, y_hat = predict(X, W)
    s = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731  (inputs here are small)
    want_z1 = np.array([[1 + 1.0, 2.0, -1 + 4.0], [-0.5, -1.0, -2.0]])
    want_z2 = s(want_z1) @ np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(z1, want_z1)
    np.testing.assert_allclose(z2, want_z2)
    np.testing.assert_allclose(y_hat, s(want_z2))
    assert z1.shape == (2, 3) and z2.shape == (2,) and y_hat.shape == (2,)


def test_sigmoid_no_overflow_and_exact_limits():
    z = np.array([-1e308, -800.0, -40.0, 0.0, 40.0, 800.0, 1e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = bp.sigmoid(z)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    np.testing.assert_allclose(s[2], np.exp(-40.0) / (1 + np.exp(-40.0)), rtol=1e-15)
    np.testing.assert_allclose(s + bp.sigmoid(-z), 1.0)


def test_predict_warning_free_for_huge_weights():
    X, _, W = make(scale=1e6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, y_hat = predict(X, W)
    assert np.all((y_hat >= 0) & (y_hat <= 1))


def test_logistic_loss_values_and_nan_case():
    y = np.array([1.0, 0.0, 1.0])
    y_hat = np.array([0.9, 0.2, 0.5])
    want = -(np.log(0.9) + np.log(0.8) + np.log(0.5)) / 3
    assert logistic_loss(y, y_hat) == pytest.approx(want, rel=1e-14)
    with pytest.warns(RuntimeWarning):
        assert np.isnan(logistic_loss(np.zeros(4), np.zeros(4)))


def test_stable_matches_naive_where_naive_is_fine():
    X, y, W = make(1)
    _, z2, y_hat = predict(X, W)
    assert stable_logistic_loss(y, z2) == pytest.approx(logistic_loss(y, y_hat), rel=1e-12)


def test_stable_logistic_loss_extremes_exact_and_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stable_logistic_loss(np.zeros(3), -1e10 * np.ones(3)) == 0.0
        assert stable_logistic_loss(np.ones(3), -1e10 * np.ones(3)) == 1e10
        assert stable_logistic_loss(np.ones(2), 1e10 * np.ones(2)) == 0.0
        assert stable_logistic_loss(np.zeros(2), np.array([1e300, 1e300])) == 1e300
    # far tail: log(1 + e^-30) ~ e^-30, kept to full relative precision
    assert stable_logistic_loss(np.ones(1), np.array([30.0])) == pytest.approx(np.log1p(np.exp(-30.0)), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_matches_finite_differences(seed):
    X, y, W = make(seed)
    g, n = gradient(X, y, W), numerical_gradient(lambda w: stable_logistic_loss(y, predict(X, w)[1]), W)
    for k in W:
        assert g[k].shape == W[k].shape
        np.testing.assert_allclose(g[k], n[k], rtol=1e-6, atol=1e-9)
    assert relative_error(g, n) < 1e-7
    wrong = {"w_1": g["w_1"], "w_2": 1.01 * g["w_2"]}
    assert relative_error(wrong, n) > 1e-3  # the check does notice a wrong gradient


def autograd_grad(X, y, W):
    torch = pytest.importorskip("torch")
    w1 = torch.tensor(W["w_1"], requires_grad=True)
    w2 = torch.tensor(W["w_2"], requires_grad=True)
    z2 = (torch.sigmoid(torch.tensor(X) @ w1) @ w2)[:, 0]
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z2, torch.tensor(y))
    loss.backward()
    return {"w_1": w1.grad.numpy(), "w_2": w2.grad.numpy()}, loss.item()


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4, 1e6])
def test_gradient_matches_autograd_including_huge_logits(scale):
    X, y, W = make(3, scale=scale, B=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = gradient(X, y, W)
        _, z2, _ = predict(X, W)
        loss = stable_logistic_loss(y, z2)
    if scale >= 1e4:
        assert np.abs(z2).max() >= 1e4  # the regime the issue asks about is really exercised
    ref, ref_loss = autograd_grad(X, y, W)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in W:
        assert np.isfinite(g[k]).all()
        np.testing.assert_allclose(g[k], ref[k], rtol=1e-9, atol=1e-12 * max(1.0, scale))


def test_gradient_does_not_modify_W():
    X, y, W = make(4)
    before = {k: v.copy() for k, v in W.items()}
    gradient(X, y, W)
    for k in W:
        np.testing.assert_array_equal(W[k], before[k])


# ---- bad input --------------------------------------------------------------------------------

X0, y0, W0 = make(5)
BAD_PREDICT = [
    (X0[0], W0, ValueError, "X must be 2-D"),
    (X0[:, :6], W0, ValueError, "D = X.shape\\[1\\] = 6"),
    (X0, {"w_1": W0["w_1"][:, :4], "w_2": W0["w_2"]}, ValueError, r"\(4, 1\)"),
    (X0, {"w_1": W0["w_1"], "w_2": W0["w_2"][:, 0]}, ValueError, "W\\['w_2'\\] must be 2-D"),
    (X0, {"w_1": W0["w_1"]}, KeyError, "missing \\['w_2'\\]"),
    (np.where(np.eye(B, D) > 0, np.nan, X0), W0, ValueError, "finite"),
    (X0, {"w_1": W0["w_1"] * np.inf, "w_2": W0["w_2"]}, ValueError, "finite"),
    (X0, [W0["w_1"], W0["w_2"]], ValueError, "dict"),
]


@pytest.mark.parametrize("X,W,exc,msg", BAD_PREDICT)
def test_bad_input_predict_and_gradient(X, W, exc, msg):
    with pytest.raises(exc, match=msg):
        predict(X, W)
    with pytest.raises(exc, match=msg):
        gradient(X, y0, W)


@pytest.mark.parametrize("y,msg", [
    (np.array([0, 1, 2.0]), "only the labels 0 and 1"),
    (np.array([0, 1.0]), "y has 2"),
    (np.array([[0, 1], [1, 0], [1, 1.0]]), "y must be 1-D"),  # 2-D but not a column (B, 1)
    (np.array([[0, 1, 1.0]]), "y must be 1-D"),                 # a row (1, B) is not accepted
    (np.zeros((3, 1, 1)), "y must be 1-D"),
    (np.array([0, np.nan, 1]), "finite"),
])
def test_bad_labels(y, msg):
    with pytest.raises(ValueError, match=msg):
        logistic_loss(y, np.full(3, 0.5))
    with pytest.raises(ValueError, match=msg):
        stable_logistic_loss(y, np.zeros(3))
    with pytest.raises(ValueError, match=msg):
        gradient(X0[:3], y, W0)


def test_bad_predictions_and_logits():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        logistic_loss(np.zeros(2), np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="finite"):
        stable_logistic_loss(np.zeros(2), np.array([0.0, np.inf]))
    with pytest.raises(ValueError, match="numeric"):
        logistic_loss(np.zeros(2), ["a", "b"])


# ---- column vectors (B, 1) are accepted wherever a vector (B,) is -------------------------------

def test_column_vectors_accepted_and_results_unchanged():
    X, y, W = make(6)
    _, z2, y_hat = predict(X, W)
    col = lambda v: v[:, None]  # noqa: E731
    for yy in (y, col(y)):
        for yh in (y_hat, col(y_hat)):
            assert logistic_loss(yy, yh) == logistic_loss(y, y_hat)
        for zz in (z2, col(z2)):
            assert stable_logistic_loss(yy, zz) == stable_logistic_loss(y, z2)
        g = gradient(X, yy, W)
        assert {k: v.shape for k, v in g.items()} == {"w_1": (D, K), "w_2": (K, 1)}
        for k in W:
            np.testing.assert_array_equal(g[k], gradient(X, y, W)[k])
    # the nan of question 1.2 and the exact 0 of question 1.3 are the same with columns
    with pytest.warns(RuntimeWarning):
        assert np.isnan(logistic_loss(np.zeros((4, 1)), np.zeros((4, 1))))
    assert stable_logistic_loss(np.zeros((3, 1)), -1e10 * np.ones((3, 1))) == 0.0
    assert stable_logistic_loss(np.zeros(3), -1e10 * np.ones((3, 1))) == 0.0
    # B = 1: a (1, 1) column is one sample
    assert gradient(X[:1], y[:1, None], W)["w_2"].shape == (K, 1)


@pytest.mark.parametrize("bad,msg", [
    (np.zeros((3, 2)), r"\(B,\) or \(B, 1\).*got shape \(3, 2\)"),
    (np.zeros((1, 3)), r"got shape \(1, 3\)"),
    (np.zeros((3, 1, 1)), r"got shape \(3, 1, 1\)"),
    (np.zeros(()), r"got shape \(\)"),
    (np.array([[0.0], [np.nan], [1.0]]), r"finite; got shape \(3, 1\).*1 NaN/inf"),
])
def test_other_shapes_still_rejected_with_clear_messages(bad, msg):
    with pytest.raises(ValueError, match="y_hat must be 1-D.*" + msg):
        logistic_loss(np.zeros(3), bad)
    with pytest.raises(ValueError, match="z_2 must be 1-D.*" + msg):
        stable_logistic_loss(np.zeros(3), bad)
    with pytest.raises(ValueError, match="y must be 1-D.*" + msg):
        gradient(X0[:3], bad, W0)
    with pytest.raises(ValueError, match="y must be 1-D.*" + msg):
        stable_logistic_loss(bad, np.zeros(3))


def test_empty_input_is_refused_not_answered_with_zeros_or_nan():
    for X, W in ((X0[:0], W0), (X0[:, :0], {"w_1": W0["w_1"][:0], "w_2": W0["w_2"]}),
                 (X0, {"w_1": W0["w_1"][:, :0], "w_2": W0["w_2"][:0]})):
        with pytest.raises(ValueError, match=r"must not be empty .*got shape \((0, \d+|\d+, 0)\)"):
            predict(X, W)
        with pytest.raises(ValueError, match="must not be empty"):
            gradient(X, y0[:len(X)], W)
    with pytest.raises(ValueError, match=r"y_hat must not be empty .*got shape \(0,\)"):
        logistic_loss(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match=r"z_2 must not be empty .*got shape \(0, 1\)"):
        stable_logistic_loss(np.zeros(0), np.zeros((0, 1)))


def test_length_mismatch_between_column_and_vector():
    with pytest.raises(ValueError, match="z_2 has 3 entries, y has 2"):
        stable_logistic_loss(np.zeros((2, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="X has 3 entries, y has 4"):
        gradient(X0[:3], np.zeros((4, 1)), W0)


def test_no_loops_in_part1():
    tree = ast.parse(inspect.getsource(bp))
    loops = (ast.For, ast.While, ast.AsyncFor, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    found = [(type(n).__name__, n.lineno) for n in ast.walk(tree) if isinstance(n, loops)]
    assert found == [], f"loops found in hw3/backprop.py: {found}"


# ---- saturated hidden units: the derivative sigma(z) sigma(-z) keeps its relative precision --------

def _log_sigmoid(z):
    return -np.logaddexp(0.0, -z)  # log sigma(z) = -log(1 + e^-z), exact for any finite z


def reference_gradient(X, y, W):
    """The gradient from the chain rule with sigma'(z) = exp(log sigma(z) + log sigma(-z)): computed from
    log-sigmoids, independently of hw3, and relatively exact where sigma'(z) is tiny (1 - sigma(z) is not)."""
    z1 = X @ W["w_1"]
    x1 = np.exp(_log_sigmoid(z1))
    delta2 = (np.exp(_log_sigmoid((x1 @ W["w_2"])[:, 0])) - y) / X.shape[0]
    delta1 = delta2[:, None] * W["w_2"].T * np.exp(_log_sigmoid(z1) + _log_sigmoid(-z1))
    return {"w_1": X.T @ delta1, "w_2": x1.T @ delta2[:, None]}


def test_gradient_of_saturated_hidden_units_is_relatively_exact():
    # z1 from 17.5 to 72: 1 - sigma(z1) has lost 8 to all 16 digits (it is 0 exactly beyond 37), sigma(-z1) none.
    # Every term of each sum has the same sign (X, w_2, delta2 > 0), so the sums add no cancellation either.
    X = np.array([[1.0, 0.5], [2.0, 1.0], [0.5, 1.5]])
    W = {"w_1": np.array([[20.0, 10.0, 30.0], [5.0, 25.0, 12.0]]), "w_2": np.array([[0.1], [0.2], [0.05]])}
    y = np.zeros(3)
    assert 17 <= (X @ W["w_1"]).min() and (X @ W["w_1"]).max() >= 60
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = gradient(X, y, W)
    ref = reference_gradient(X, y, W)
    assert (ref["w_1"] > 0).all() and ref["w_1"].max() < 1e-8  # tiny but not zero: a relative comparison
    np.testing.assert_allclose(g["w_1"], ref["w_1"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(g["w_2"], ref["w_2"], rtol=1e-12, atol=0)


def test_reference_gradient_matches_finite_differences_where_they_are_accurate():
    X, y, W = make(7)  # the reference itself is checked where nothing saturates
    ref, n = reference_gradient(X, y, W), numerical_gradient(lambda w: stable_logistic_loss(y, predict(X, w)[1]), W)
    for k in W:
        np.testing.assert_allclose(ref[k], n[k], rtol=1e-6, atol=1e-9)


# ---- logistic_loss takes every probability in [0, 1], the end points included --------------------

@pytest.mark.parametrize("y_hat", [0.0, 1.0])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_logistic_loss_accepts_probabilities_zero_and_one(y, y_hat):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = logistic_loss(np.array([y, 1.0]), np.array([y_hat, 0.5]))  # eq. (3) literally: may be nan or inf
    assert isinstance(value, float)
    if y != y_hat:  # a sure wrong prediction: log(0) in the term that counts
        assert value == np.inf


@pytest.mark.parametrize("y_hat", [1 + 1e-12, -1e-12, np.nextafter(1.0, 2.0), np.nextafter(0.0, -1.0)])
def test_logistic_loss_refuses_values_just_outside_zero_one(y_hat):
    with pytest.raises(ValueError, match=r"y_hat must be probabilities in \[0, 1\]"):
        logistic_loss(np.array([1.0, 0.0]), np.array([0.5, y_hat]))


def test_logistic_loss_length_mismatch_names_y_hat():
    with pytest.raises(ValueError, match="y_hat has 3 entries, y has 2"):
        logistic_loss(np.zeros(2), np.full((3, 1), 0.5))


def test_error_messages_name_the_argument_and_what_is_wrong_exactly():
    def message(fn, *args):
        with pytest.raises((ValueError, KeyError)) as e:
            fn(*args)
        return str(e.value) if isinstance(e.value, ValueError) else e.value.args[0]
    assert message(logistic_loss, np.zeros(3), np.zeros((3, 2))) == \
        "y_hat must be 1-D (B,) or (B, 1), numeric and finite; got shape (3, 2), dtype float64"
    assert message(logistic_loss, np.zeros(2), ["a", "b"]) == \
        "y_hat must be 1-D (B,) or (B, 1), numeric and finite; got shape (2,), dtype <U1"  # no NaN count
    assert message(predict, X0[0], W0).startswith("X must be 2-D, numeric")
    assert message(predict, X0, {"w_1": W0["w_1"][0], "w_2": W0["w_2"]}).startswith("W['w_1'] must be 2-D, numeric")
    assert message(predict, X0, [W0]) == "W must be a dict with keys 'w_1' and 'w_2', got list"
    assert message(gradient, X0[:3], np.zeros(4), W0).endswith(": X has 3 entries, y has 4, values other than 0 and 1: []")
    y = np.array([0, 1, 2, 3, 4, 5, 6, 7, 1, 0, 2])
    assert message(gradient, X0, y, W0).endswith("values other than 0 and 1: [2.0, 3.0, 4.0, 5.0, 6.0]")
