"""Write homework3.ipynb (unexecuted) from the cells below; execute it with the README's command.

Keeping the notebook's source here makes its diffs readable; the committed .ipynb carries the outputs.
"""
from pathlib import Path

import nbformat as nbf

CELLS: list[tuple[str, str]] = []


def md(text: str) -> None:
    CELLS.append(("md", text.strip("\n")))


def code(text: str) -> None:
    CELLS.append(("code", text.strip("\n")))


md(r"""
# EE-411 Homework 3: Neural networks

Part 1 implements and differentiates a one-hidden-layer sigmoid network by hand in NumPy; Part 2
trains MLPs and CNNs on KMNIST. The code lives in the package `hw3/` (tested by `pytest`); the cells
below call it, show its output and answer each question underneath.

**Running it.** Locally: `pip install -r requirements.txt`, then run all cells (see the README).
On Colab: upload the project folder (or clone it), open this notebook from it, pick a GPU runtime and
run all cells. Finished training runs are cached as JSON under `results/`, so a re-run (or a Colab
reconnect) only trains what is missing.
""")

code(r"""
# Setup: install only what is missing (never torch), then report the device and versions.
import importlib.util, subprocess, sys
missing = [pkg for pkg, mod in [("matplotlib-fontja", "matplotlib_fontja"), ("tqdm", "tqdm")]
           if importlib.util.find_spec(mod) is None]
if missing:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
if importlib.util.find_spec("hw3") is None:
    raise ModuleNotFoundError("hw3 not found: open this notebook from the project folder (README: 'Colab')")

import warnings
import torch
import numpy as np
import matplotlib.pyplot as plt
import hw3
from hw3 import plots, experiments
%matplotlib inline
print(hw3.environment_summary())
""")

code(r"""
# The one place for settings. DATA_DIR=None means $HW3_DATA_DIR if set, else data/ (downloaded on first use).
RUN = experiments.RunSettings.quick_if_requested(epochs=20, batch_size=64, seed=0, data_dir=None)
print(RUN)
""")

md(r"""
# Part 1: Backpropagation with logistic loss

Samples are the rows of `X` (B x D), so the first layer of eq. (1), $\mathbf z^{(1)} = \mathbf W^{(1)}\mathbf x^{(0)}$
for one column vector, becomes `Z1 = X @ w_1` for the whole batch with $\mathbf W^{(1)} = $ `w_1`$^\top$
(`w_1` is D x K). Likewise $z^{(2)} = (\mathbf w^{(2)})^\top \mathbf x^{(1)}$ becomes `X1 @ w_2`.
The code is in `hw3/backprop.py`; none of its functions contains a loop.

## 1.1 `predict(X, W)`
""")

code(r"""
D, K, B = 7, 5, 4
rng = np.random.default_rng(0)
X = rng.normal(size=(B, D))
W = {"w_1": rng.normal(size=(D, K)), "w_2": rng.normal(size=(K, 1))}
z1, z2, y_hat = hw3.predict(X, W)
print("z1", z1.shape, "\n", z1.round(3))
print("z2", z2.shape, z2.round(3))
print("y_hat", y_hat.shape, y_hat.round(3))
""")

md(r"""
`predict` returns, for every sample, the hidden pre-activations $\mathbf z^{(1)}_i$ (a row of `z1`), the
output logit $z^{(2)}_i$ and the prediction $\hat y_i=\sigma(z^{(2)}_i)$, all by matrix products over the
whole batch. The sigmoid is evaluated as $1/(1+e^{-|z|})$ or $e^{-|z|}/(1+e^{-|z|})$ depending on the
sign of $z$, so it never exponentiates a large positive number: no overflow warning for any finite input.
Bad input (wrong shapes, a missing key, NaN/inf) raises an error that says what was expected.

## 1.2 `logistic_loss(y, y_hat)`
""")

code(r"""
y = np.array([1.0, 0.0, 1.0, 0.0])
print("a sensible batch:", hw3.logistic_loss(y, np.array([0.9, 0.2, 0.6, 0.1])))
with warnings.catch_warnings():
    warnings.simplefilter("always")   # show NumPy's warnings every time
    print("y_hat = 0, y = 0:", hw3.logistic_loss(np.zeros(4), np.zeros(4)))
""")

md(r"""
**Why `nan`?** With $y=0$ and $\hat y=0$, eq. (3) reads $-0\cdot\log 0-(1-0)\log(1-0)$. The second term
is $-\log 1 = 0$, but the first is $0\cdot\log 0 = 0\cdot(-\infty)$, which IEEE-754 arithmetic defines
as `nan` (NumPy warns twice: *divide by zero* in `log`, then *invalid value* in the product). The
average of anything with a `nan` is `nan`.

Mathematically the loss of this prediction is **0**: it is a perfect prediction, and the term
$y\log\hat y$ is meant to be absent when $y=0$ (its limit, $\lim_{y\to0} y\log y = 0$, is also 0). So the
formula is right but its literal floating-point evaluation is not. The case is not hypothetical either:
a sigmoid never outputs exactly 0 for a finite input, but in float64 $\sigma(z)$ rounds to 0 for
$z \lesssim -745$ (and to 1 for $z \gtrsim 37$, where $\log(1-\hat y)$ breaks in the same way), so a
confident network feeding probabilities into this loss can produce `nan` or `inf` and poison training.

## 1.3 `stable_logistic_loss(y, z_2)`
""")

code(r"""
z = -1e10 * np.ones(4)
with warnings.catch_warnings():
    warnings.simplefilter("error")    # any overflow/invalid warning would raise here
    print("y = 0, z2 = -1e10:", hw3.stable_logistic_loss(np.zeros(4), z))
    print("y = 1, z2 = -1e10:", hw3.stable_logistic_loss(np.ones(4), z))
    print("sigmoid(-1e10) =", hw3.sigmoid(z)[0], "-> the naive loss would need log(0)")
""")

md(r"""
Working with the logit $z$ instead of $\hat y=\sigma(z)$:
$-\log\sigma(z)=\log(1+e^{-z})$ and $-\log(1-\sigma(z))=\log(1+e^{z})$, so

$$\mathcal L(y,z) = y\,\log(1+e^{-z}) + (1-y)\log(1+e^{z}) = y\,\mathrm{logaddexp}(0,-z) + (1-y)\,\mathrm{logaddexp}(0,z).$$

`np.logaddexp(0, t)` computes $\log(e^0+e^t)$ as $\max(0,t)+\log(1+e^{-|t|})$ (with `log1p`): it only ever
exponentiates a non-positive number, so nothing overflows, and it never takes $\log 0$. For
$y=0,\ z=-10^{10}$ the loss is $\log(1+e^{-10^{10}})$, which is $0$ to machine precision: the correct
answer for a confident correct prediction, where 1.2 gave `nan`. With $y=1$ the same logit is a
confident *wrong* prediction and the loss is $10^{10}$, exact and finite, where the naive formula gives
$-\log 0 = \infty$. No warning is raised in either case.

## 1.4 Gradients by backpropagation

**Forward pass** for one pair $(\mathbf x, y)$, with $\mathbf x^{(0)}=\mathbf x\in\mathbb R^D$,
$\mathbf W^{(1)}\in\mathbb R^{K\times D}$, $\mathbf w^{(2)}\in\mathbb R^{K}$:

$$z^{(1)}_i=\sum_{j=1}^D w^{(1)}_{ij}x^{(0)}_j,\qquad x^{(1)}_i=\sigma(z^{(1)}_i),\qquad
z^{(2)}=\sum_{i=1}^K w^{(2)}_i x^{(1)}_i,\qquad \hat y=\sigma(z^{(2)}),$$
$$\mathcal L = -y\log\hat y-(1-y)\log(1-\hat y).$$

We use $\sigma'(z)=\sigma(z)\,(1-\sigma(z))$, which follows from $\sigma(z)=(1+e^{-z})^{-1}$:
$\sigma'(z)=e^{-z}(1+e^{-z})^{-2}=\sigma(z)\cdot\frac{e^{-z}}{1+e^{-z}}=\sigma(z)(1-\sigma(z))$.

**Output layer.** By the chain rule through $\hat y$:

$$\frac{\partial\mathcal L}{\partial\hat y}=-\frac{y}{\hat y}+\frac{1-y}{1-\hat y}=\frac{\hat y-y}{\hat y(1-\hat y)},\qquad
\frac{\partial\hat y}{\partial z^{(2)}}=\hat y(1-\hat y)
\quad\Longrightarrow\quad
\delta^{(2)}:=\frac{\partial\mathcal L}{\partial z^{(2)}}=\hat y-y=\sigma(z^{(2)})-y .$$

(The same result comes directly from the stable form $\mathcal L=\log(1+e^{z})-yz$ of 1.3:
$\partial_z\mathcal L=\frac{e^z}{1+e^z}-y=\sigma(z)-y$.) Since $z^{(2)}$ is linear in $\mathbf w^{(2)}$,
$\partial z^{(2)}/\partial w^{(2)}_i=x^{(1)}_i$ and

$$\boxed{\frac{\partial\mathcal L}{\partial w^{(2)}_i}=\delta^{(2)}\,x^{(1)}_i=\big(\sigma(z^{(2)})-y\big)\,\sigma(z^{(1)}_i)}$$

**Hidden layer.** Backpropagate $\delta^{(2)}$ through $z^{(2)}$ ($\partial z^{(2)}/\partial x^{(1)}_i=w^{(2)}_i$)
and through the sigmoid:

$$\delta^{(1)}_i:=\frac{\partial\mathcal L}{\partial z^{(1)}_i}
=\frac{\partial\mathcal L}{\partial z^{(2)}}\frac{\partial z^{(2)}}{\partial x^{(1)}_i}\frac{\partial x^{(1)}_i}{\partial z^{(1)}_i}
=\delta^{(2)}\,w^{(2)}_i\,\sigma(z^{(1)}_i)\big(1-\sigma(z^{(1)}_i)\big).$$

Only $z^{(1)}_i$ depends on $w^{(1)}_{ij}$, with $\partial z^{(1)}_i/\partial w^{(1)}_{ij}=x^{(0)}_j$, so

$$\boxed{\frac{\partial\mathcal L}{\partial w^{(1)}_{ij}}=\delta^{(1)}_i\,x^{(0)}_j
=\big(\sigma(z^{(2)})-y\big)\,w^{(2)}_i\,\sigma(z^{(1)}_i)\big(1-\sigma(z^{(1)}_i)\big)\,x^{(0)}_j}$$

**Why this form is the stable one.** Multiplying $\partial\mathcal L/\partial\hat y$ and
$\partial\hat y/\partial z^{(2)}$ numerically would divide by $\hat y(1-\hat y)$, which is exactly 0
once the sigmoid saturates in floating point ($|z^{(2)}|\gtrsim 37$ to 745): $0/0$ or $\infty\cdot 0$ = `nan`.
The simplified $\delta^{(2)}=\sigma(z^{(2)})-y$, computed from the logit with the stable sigmoid, lies in
$[-1,1]$ for every $z^{(2)}$, so the whole gradient is finite; every other factor is a bounded sigmoid
value, a weight or an input. In the code, $\sigma'(z)$ is evaluated as $\sigma(z)\sigma(-z)$, which avoids
the cancellation in $1-\sigma(z)$ when $z$ is large.

**Batch form used by `gradient`.** For the average loss $\frac1B\sum_b\mathcal L_b$ over the rows of `X`,
with `w_1` $=\mathbf W^{(1)\top}$ (D x K) and `w_2` $=\mathbf w^{(2)}$ (K x 1):

$$Z_1=XW_1,\quad X_1=\sigma(Z_1),\quad \mathbf z_2=X_1\mathbf w_2,\quad
\boldsymbol\delta_2=\tfrac1B\big(\sigma(\mathbf z_2)-\mathbf y\big)\in\mathbb R^{B},$$
$$\nabla_{\mathbf w_2}=X_1^\top\boldsymbol\delta_2\ (K\times1),\qquad
\Delta_1=\big(\boldsymbol\delta_2\mathbf w_2^\top\big)\odot\sigma(Z_1)\odot\sigma(-Z_1)\ (B\times K),\qquad
\nabla_{W_1}=X^\top\Delta_1\ (D\times K).$$

Entry $(j,i)$ of $X^\top\Delta_1$ is $\frac1B\sum_b\delta^{(1)}_{b,i}x^{(0)}_{b,j}$: the average of the
boxed per-sample formula, transposed like `w_1`.

## 1.5 `gradient(X, y, W)`
""")

code(r"""
from hw3.gradcheck import numerical_gradient, relative_error
rng = np.random.default_rng(1)
X = rng.normal(size=(32, 7)); y = rng.integers(0, 2, size=32).astype(float)
W = {"w_1": rng.normal(size=(7, 5)), "w_2": rng.normal(size=(5, 1))}
g, g_num = hw3.gradient(X, y, W), numerical_gradient(X, y, W)
print({k: v.shape for k, v in g.items()})
print("dL/dw_2 analytic :", g["w_2"].ravel().round(6))
print("dL/dw_2 numerical:", g_num["w_2"].ravel().round(6))
print(f"relative error ||g - g_num|| / (||g|| + ||g_num||): {relative_error(g, g_num):.1e}")
big = {k: 1e4 * v for k, v in W.items()}           # logits of order 1e5: the sigmoids saturate
with warnings.catch_warnings():
    warnings.simplefilter("error")
    g_big = hw3.gradient(X, y, big)
print("huge weights: gradient finite:", all(np.isfinite(v).all() for v in g_big.values()))
""")

md(r"""
The analytic gradient agrees with central finite differences to about $10^{-9}$ relative error (the
accuracy of the finite differences themselves), and it stays finite and warning-free when the weights
are scaled so that the logits reach $10^5$. The test suite also checks it against PyTorch autograd of
`binary_cross_entropy_with_logits`, for normal and for huge weights.

# Part 2: Classifying KMNIST

## 2.1 Data, loaders and visualisation
""")

code(r"""
splits = hw3.kmnist_splits(RUN.data_dir)          # md5-verified files; stratified 50,000 / 10,000 split
for name in ("train", "val", "test"):
    counts = np.bincount(splits.labels[name].numpy(), minlength=10)
    print(f"{name:5}: {len(splits.labels[name]):6} images, per class {counts.min()}..{counts.max()}")
print(splits.preprocess)
loaders = hw3.standard_loaders(RUN.data_dir, batch_size=RUN.batch_size)   # the textbook DataLoader route
x, y = next(iter(loaders["train"]))
print("a DataLoader batch:", tuple(x.shape), x.dtype, "labels", tuple(y.shape), y.dtype)
""")

code(r"""
fig = plots.show_samples(splits, per_class=10)
plt.show()
""")

md(r"""
**Which transform is necessary?** `torchvision.datasets.KMNIST` yields each sample as a 28x28 8-bit
PIL image, but a PyTorch model computes on **float tensors shaped C x H x W** (batched by the
DataLoader into B x C x H x W). `transforms.ToTensor()` does exactly that: PIL image -> `float32`
tensor of shape 1 x 28 x 28 with values scaled from 0..255 to [0, 1]. Without it the DataLoader cannot
even collate the samples into a batch, and `nn.Conv2d`/`nn.Linear` would reject integer input. The
same tensor serves both models: the MLP flattens it to 784 values in its first layer.

We add `transforms.Normalize(mean, std)` with the mean and standard deviation of the **training split
only** (printed above; validation and test never leak into them), so that inputs are centred with unit
variance: better-conditioned first-layer gradients and an initialisation that behaves as designed.
For PermutedKMNIST (2.5) the `RandomPermutation` is appended as the last transform.

Training does not go through the DataLoader: `hw3.device_loaders` applies the same transforms to each
split once, keeps the tensors on the training device, reshuffles with `torch.randperm` every epoch and
slices batches (the tests check that both routes yield identical samples). On a 2-core CPU that makes
an MLP epoch about 10x and a CNN epoch about 2.4x faster than the DataLoader route (`bench/epoch_time.py`).

## 2.2 Multilayer perceptron, four optimizers
""")

code(r"""
mlp_results = RUN.run("mlp")
plots.plot_learning_curves(mlp_results, "MLP 784-100-100-10 on KMNIST, 20 epochs, batch 64"); plt.show()
print(plots.summary_table(mlp_results)); print(); print(plots.run_facts(mlp_results))
""")

md(r"""
**Ranking.** After 20 epochs (table above): SGD-Nesterov (≈95.4% validation accuracy) > plain SGD
(≈94.2%) > Adam lr=0.01 (≈91.4%) ≫ Adam lr=1 (10%, chance level). The ranking on the test set is the same.

- **Momentum wins on speed.** SGD-Nesterov is at ≈91% validation accuracy after one epoch, where plain
  SGD with the same learning rate is at ≈80%. With momentum 0.9 the update accumulates past gradients,
  so along directions where they agree the effective step is about $\eta/(1-\beta)=10\times$ larger, while
  components that flip sign from batch to batch cancel; Nesterov's look-ahead gradient damps the
  overshoot that momentum causes.
- **Plain SGD is slow but steady.** Its training and validation losses are still falling at epoch 20
  (its validation loss is lowest at the last epoch): it is under-trained rather than over-fitted, and
  would keep improving with more epochs.
- **Adam lr=0.01 is fast, then stuck and noisy.** Adam divides each coordinate's step by the running RMS
  of its gradient, so every weight moves by roughly $\eta$ per step whatever its gradient scale: fast
  progress at first (≈90% after one epoch) but, with $\eta$ ten times Adam's usual $10^{-3}$, steps too
  large to settle. Its training loss stalls around 0.23 and the validation accuracy jitters between
  about 90% and 92% while the validation loss rises from epoch 2 on.
- **Adam lr=1 fails.** Each weight moves by about 1 in the first step, which blows the logits up: the
  training loss jumps from 2.3 to the tens of thousands within the first steps (the spike at the
  left of the figure). The ReLUs end up dead or saturated, the network outputs (almost) the same
  prediction for every image, its training loss settles near $\ln 10\approx 2.30$, the loss of a uniform
  guess, and its accuracy is 10%. The loss stays finite, so the run is not cut short as diverged, but it
  has failed all the same.
- **Over-fitting.** SGD-Nesterov drives the training loss to ≈6e-4: it has memorised the 50,000
  training images. Its validation loss is lowest around epoch 5 and climbs afterwards while its accuracy
  plateaus: the few mistakes become confident ones. Early stopping on the validation loss, weight decay,
  dropout or data augmentation would address it (see 2.6).
- **Validation vs test.** Every working run scores 6–9 points lower on the test set than on validation. The
  validation images are a random split of KMNIST's training set and so come from the same distribution
  as the training images, whereas KMNIST's official test set is known to be harder than a split of its
  training set (rois-codh/kmnist issue #17). We measure this in 2.6 (last figure): the mean image of each
  class lies 0.68–3.52 (L2 distance) from its training mean in the test set, against 0.23–0.35 in the
  validation split. Validation accuracy is good for comparing models, and an optimistic estimate of
  test accuracy.
""")

md(r"""
## 2.3 Convolutional neural network, four optimizers

`hw3.CNN`: three blocks of a 3x3 convolution (16, 32, 64 channels, padding 1), 2x2 max-pooling and ReLU,
then one linear layer. Padding 1 ("same") keeps the border pixels in play and gives 28 -> 14 -> 7 -> 3
after the poolings, so the linear layer sees 64 x 3 x 3 = 576 features. The block applies the pooling
before the ReLU: since ReLU is monotone, $\max(\mathrm{relu}(a),\mathrm{relu}(b))=\mathrm{relu}(\max(a,b))$,
so this is exactly the conv -> ReLU -> pool network of the question (a test checks it), with the ReLU
running on 4x fewer values.
""")

code(r"""
cnn_results = RUN.run("cnn")
plots.plot_learning_curves(cnn_results, "CNN (16-32-64 channels) on KMNIST, 20 epochs, batch 64"); plt.show()
print(plots.summary_table(cnn_results)); print(); print(plots.run_facts(cnn_results))
""")

md(r"""
**Ranking.** The same as for the MLP: SGD-Nesterov (≈98.5% validation, ≈94.7% test) > SGD (≈97.0%)
> Adam lr=0.01 (≈95.3%) ≫ Adam lr=1 (10%). Each working configuration of the CNN beats its MLP
counterpart by 3–4 points on validation and by 4.5–6.5 points on test.

- **SGD-Nesterov** converges fastest again (≈95% after one epoch against ≈81% for plain SGD) and ends
  best. It drives the training loss to ≈1e-4; its validation loss is lowest around epoch 8 and then rises
  slowly while the validation accuracy keeps creeping up: milder over-fitting than the MLP's.
- **Plain SGD** is slower and noisier (its validation accuracy dips once mid-training) but its
  validation loss still falls at epoch 20, so it is still under-trained.
- **Adam lr=0.01** reaches ≈94% after one epoch, peaks after a few epochs and then stalls: the
  step is too large for fine convergence, as for the MLP, and its training loss never gets below ≈0.14.
- **Adam lr=1** explodes in the first steps (training loss in the millions), then collapses to a
  constant predictor at chance level, exactly as for the MLP.
- **Test vs validation.** The test accuracy is 3.7–6.3 points below validation, the smallest gap being
  the best model's: the CNN's inductive bias (see 2.4) also generalises better to the harder test set.
""")

md(r"""
## 2.4 Number of parameters
""")

code(r"""
from hw3.models import MLP, CNN, count_parameters
for model in (MLP(), CNN()):
    print(f"{type(model).__name__}: {count_parameters(model):,} trainable parameters")
    for name, p in model.named_parameters():
        print(f"    {name:22} {str(tuple(p.shape)):16} {p.numel():7,}")
""")

md(r"""
By hand: MLP $=(784\cdot100+100)+(100\cdot100+100)+(100\cdot10+10)=89{,}610$, 88% of which sit in the
first layer; CNN $=(1\cdot16\cdot9+16)+(16\cdot32\cdot9+32)+(32\cdot64\cdot9+64)+(576\cdot10+10)=29{,}066$.
(The tests check `count_parameters` against these formulas.)

**More parameters do not mean better performance.** The CNN has 3.1x fewer parameters, yet with each
optimizer it is better than the MLP: 98.5% against 95.4% validation accuracy and 94.7% against 89.3%
test accuracy for the best runs (2.2 and 2.3). What matters is how well the architecture's assumptions
match the data:

- **Locality:** a 3x3 filter looks at neighbouring pixels, which is where strokes are; an MLP unit
  connects to all 784 pixels and has to discover from data which ones belong together.
- **Weight sharing:** the same 9 weights detect a stroke at every position, so a feature is learnt once
  instead of separately at each location: the parameters are spent far more efficiently.
- **Translation equivariance and pooling:** a shifted character gives shifted feature maps, and max-pooling
  makes the features tolerant to small shifts and distortions, which handwriting is full of.

Extra parameters that do not encode such structure mostly add capacity to memorise: the MLP reaches a
lower training loss than its validation behaviour justifies (over-fitting in 2.2) and its test accuracy
suffers most. Parameter count is also not compute: the CNN needs about 1.9 million multiply-adds per image,
the MLP about 90 thousand, which is why the CNN runs take longer on a CPU. More parameters help only
together with enough data, the right inductive bias and regularisation (compare the 2.6 model).
""")

md(r"""
## 2.5 PermutedKMNIST

One `RandomPermutation(784)` (seeded) is drawn once and appended as the last transform of the
training, validation and test splits, so all three are permuted the same way.
""")

code(r"""
permuted_splits = hw3.kmnist_splits(RUN.data_dir, permutation=experiments.permutation())
plots.show_samples(splits, per_class=6, permuted=permuted_splits); plt.show()
""")

code(r"""
perm_results = RUN.run("permuted")
plain = [next(r for r in res if r["config"]["optimizer"] == "nesterov") for res in (mlp_results, cnn_results)]
compare = [plain[0], perm_results[0], plain[1], perm_results[1]]
plots.plot_learning_curves(compare, "SGD-Nesterov: plain vs permuted pixels"); plt.show()
print(plots.summary_table(compare)); print(); print(plots.run_facts(compare))
""")

code(r"""
# The MLP cannot tell: a copy whose first layer is W[:, perm], trained on permuted images with the same
# batches, follows the plain MLP's losses step for step (float64, so only rounding can differ).
eq = experiments.permutation_equivalence(steps=300, data_dir=RUN.data_dir)
print(f"{eq['steps']} SGD-Nesterov steps: largest |loss_plain - loss_permuted| = {eq['max_abs_diff']:.1e}")
print("first losses:", np.round(eq["loss_plain"][:4], 6), np.round(eq["loss_permuted"][:4], 6))
""")

md(r"""
**What we observe.** The MLP does not care: ≈95.5% validation and ≈89.4% test accuracy on permuted
pixels against ≈95.4% / ≈89.3% on the originals, with learning curves that lie almost on top of each other.
The CNN is badly hurt: ≈89.4% validation and ≈78.6% test accuracy instead of ≈98.5% / ≈94.7%, from
≈85% after the first epoch instead of ≈95%, and its validation loss turns upward after about five
epochs while its training loss stays far above the plain CNN's (≈0.13 against ≈1e-4). On permuted
pixels the CNN is now clearly worse than the MLP, even though it beat it easily on the original images.

**Why the MLP is unaffected.** Its first layer is a dense linear map of all 784 pixels, with no notion
of which pixels are neighbours. A fixed permutation is a permutation matrix $P$, and
$W^{(1)}(P\mathbf x) = (W^{(1)}P)\,\mathbf x$: any MLP on the original images has an exact twin on the permuted
images, whose first-layer weights are the same columns in another order. Training preserves the
correspondence: the gradient with respect to $W^{(1)}P$ is the permuted gradient with respect to
$W^{(1)}$, so SGD from permuted initial weights, with the same batches, follows the same trajectory.
The last cell shows it: 300 steps of SGD-Nesterov give losses that agree to better than 1e-15, i.e. to float64
rounding. The initial weights are i.i.d., so their distribution is also permutation invariant: a
freshly initialised MLP on permuted data is statistically the same experiment as on plain data, and
the differences in the table are seed noise.

**Why the CNN suffers.** Convolution and pooling hard-code the assumption that nearby pixels belong
together (locality) and that a pattern means the same wherever it appears (weight sharing, translation
equivariance). After the permutation, a 3x3 window holds 9 pixels from unrelated places of the character,
so there are no strokes left for the filters to detect, and max-pooling merges unrelated values. A
convolution cannot absorb the permutation the way a dense layer can: $P$ is neither local nor
translation invariant. The CNN's inductive bias, its advantage in 2.3 and 2.4, has become a
handicap: it is left with 29k parameters in a structure that no longer fits the data, and only its
last linear layer can combine information from across the image. So yes, one model is much more
affected: the CNN, precisely because it relies on the spatial structure that the permutation destroys.
""")

md(r"""
## 2.6 Bonus: a better KMNIST classifier

The cell below trains the ablation (one network per row, 4 epochs each) and the final model, or loads
them from `results/`. The second cell compares the candidates for the final model on validation, as
trained by `scripts/bonus_sweep.py` (cached results; not retrained by this notebook).
""")

code(r"""
bonus_runs = RUN.run("bonus")
ablation, final = bonus_runs[:-1], bonus_runs[-1]
print(plots.ablation_table(plain[1], ablation, final))
""")

code(r"""
from hw3.bonus import candidate_comparison
print(candidate_comparison())
""")

code(r"""
test_pred = torch.tensor(final["test_pred"])
plots.plot_confusion(splits.labels["test"], test_pred, "bonus model: KMNIST test confusion matrix"); plt.show()
plots.show_mistakes(splits.images["test"], splits.labels["test"], test_pred, n=24); plt.show()
""")

code(r"""
# Is the test set drawn from the same distribution as the training set? Compare the mean image of each class.
plots.plot_class_shift(splits); plt.show()
""")

md(r"""
**The model and each decision.** Every row of the ablation adds one idea to the row above, trains one
network with the same short budget (4 epochs, about 80 s each here) and is judged on the validation
split only; the test split is evaluated once per final design (see the disclosure below).

1. **A deeper CNN with BatchNorm, trained with OneCycle SGD.** Three stages of two 3x3 convolutions
   (16, 32 and 64 channels, the homework CNN's widths), max-pooling after the first conv of each stage,
   BatchNorm and ReLU after every conv, a global max-pool and one linear layer (72,666 parameters).
   It keeps the homework CNN's inductive bias (2.4) with twice the depth. BatchNorm keeps every
   layer's inputs normalised, which allows a large learning rate (peak 0.2, SGD-Nesterov, weight decay
   5e-4, batch 128); the OneCycle schedule warms up, then anneals the learning rate to ~0, so a fixed
   budget ends in a well-converged model instead of the noisy plateau of 2.3. This is the big step:
   99.27% validation accuracy in 4 epochs, against 98.47% for the homework CNN after 20.
2. **On-device augmentation:** a random affine warp per image (shift up to 2 px, rotation up to 10°,
   scale 0.9–1.1), applied to each batch on the device with `affine_grid`/`grid_sample`: the variations
   of handwriting. With only 4 epochs it costs a little on validation (99.18% against 99.27%): the
   harder, ever-changing training images need more epochs to pay off, and validation images come from
   the same distribution as the training images, so they reward fitting that distribution. We keep it
   because its purpose is robustness to how characters are written, which is exactly where the test
   set differs (last figure).
3. **Label smoothing 0.1:** targets of 0.91 / 0.01 instead of 1 / 0 stop the logits from growing
   without bound, the over-confidence behind the rising validation losses of 2.2 and 2.3. Validation
   accuracy 99.34%, the best row without TTA.
4. **EMA of the weights** (decay 0.999, with a warm-up): the evaluated model is a running average of the
   trained weights, which smooths out SGD noise. 99.33% against 99.34%, neutral at this budget since
   OneCycle's annealing already averages; with TTA it is the best row (99.37%). It costs nothing, so we keep it.
5. **Test-time augmentation** (the `val+TTA` column): the logits of the image and of its four one-pixel
   shifts are averaged. It helped on validation for rows 2 to 4 and for the final model, not for row 1
   (99.24% against 99.27%); the final model uses it because it helped on the final model's validation.
6. **Three networks instead of one bigger one.** The same CPU budget buys one width-24 network (24,
   48, 96 channels) trained for 20 epochs (13.3 minutes here), or three width-16 networks trained
   for 12 epochs each (11.8 minutes), whose predicted probabilities are averaged (second table). On validation the two are
   tied (99.58% against 99.61%, and 99.64% against 99.63% with TTA: at most 3 images of 10,000). The
   ensemble has the lower validation loss (0.1234 against 0.1305), that is, better probabilities, and
   averaging independently trained networks is the method that degrades least when the test
   distribution differs from the training one (Lakshminarayanan et al., 2017; Ovadia et al., 2019),
   which is our situation (last figure). Each network alone reaches 99.45% to 99.57% (99.52% to 99.62%
   with TTA); together they reach 99.61% (99.63%).
7. **Elastic deformation: tried, rejected on validation.** Since the test set is written differently
   (last figure), we tried the classic augmentation for handwriting styles: on top of the affine warp,
   a smooth random displacement field (Simard et al., 2003, with their MNIST values $\alpha = 34$,
   $\sigma = 4$ px: a displacement of about 1.3 px per direction (standard deviation); not tuned here),
   for the same three networks
   (third row of the second table). Before training it we fixed a rule: it would be tested only if
   its validation accuracy came within 0.10 points (10 images) of the ensemble without it. It lost
   0.23 points (99.38% against 99.61%, and 99.43% against 99.63% with TTA), so its test accuracy was
   never measured, and the final model is the ensemble without it. Its validation loss is lower
   (0.1135 against 0.1234), so its probabilities are better even though its decisions are worse.
   The likely reason: the deformed training images lie farther from the validation images, which
   come from the training distribution. Whether they lie closer to the test set's writing,
   validation cannot tell.

**Did it work? Partly.** The final ensemble (11.8 minutes of training on this 2-core CPU) reaches 99.61%
validation accuracy (99.63% with TTA) and **98.76% test accuracy**, against 98.47% / 94.74% for the
best homework CNN: 76% of the test errors are gone. It does not reach the 99.0% we aimed for, nor the
best rows of the KMNIST benchmark table (98.83% for PreActResNet-18 + Manifold Mixup, 98.90% for a
ResNet-18 + VGG ensemble).

**Disclosure: this is our second look at the test set.** A first version of this section trained the
single width-24 network (the first row of the second table, chosen before any test measurement);
its test accuracy was 98.86%. Missing 99.0% made us reconsider how to spend the budget, and the
ensemble was chosen on validation and on the argument of point 6, without measuring it on test. Its
test accuracy is 10 images lower: 0.1 point, which one run per design cannot resolve (the binomial
standard error of a 1.2% error rate measured on 10,000 images is 0.11 points), so the evidence favours
neither design. We report the design that the validation protocol chose:
switching back to the one the test set favoured would be model selection on test. The elastic
candidate of point 7 would have been a third look, but it failed its validation rule, so there is none.

**Why the test set stays out of reach: it is written differently.** In the last figure, the
validation mean of each class lies 0.23 to 0.35 from the training mean (sampling noise: the
validation split is a random part of the training file), while the test means lie
0.68 to 3.52 away; は (ha), や (ya), つ (tsu) and お (o) are, on average, written differently in the
test set (see the test − train row). This is the likely reason why every model of this homework
loses accuracy from validation to test. Validation cannot see this shift: it saturates near 99.6% for every strong
model here, so no choice made on it can target the test errors. The shift is not the whole story,
though: the classes whose mean moves most are not where the errors are (や (ya) has 3 errors), since
the network copes with those variants. Of the 124 test errors, most are す
(su, 35), な (na, 22), き (ki, 19) and は (ha, 16); the most frequent confusions are ki → ma (14),
na → o (10) and su → tsu (10), characters with similar loops, and several of the misclassified images
above are hard to read even for a human. Closing the gap needs training data or augmentations that
cover the test set's writing styles, judged on a validation set that contains them.
""")


def build(path: Path) -> None:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbf.v4.new_markdown_cell(t) if kind == "md" else nbf.v4.new_code_cell(t) for kind, t in CELLS]
    nbf.write(nb, path)


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "homework3.ipynb"
    build(out)
    print(f"wrote {out} ({len(CELLS)} cells)")
