"""dit_lib — the library behind *Latent DiT Limits*, an interactive book on
Hu, Wu, Li, Pi, Song, Liu, "On Statistical Rates and Provably Efficient Criteria of Latent Diffusion
Transformers (DiTs)", NeurIPS 2024.

Modules, by concept:

* :mod:`dit_lib.data` — subspace data ``x = U h`` with Gaussian-mixture latents; subspace recovery.
* :mod:`dit_lib.patches` — the reshape ``R`` of a latent into ``d x L`` tokens.
* :mod:`dit_lib.diffusion` — the forward OU process.
* :mod:`dit_lib.scores` — exact scores, the Lemma 2.1 decomposition, denoising score matching, score errors (chapter 2).
* :mod:`dit_lib.network`, :mod:`dit_lib.training` — the latent DiT score network and its DSM training loop (chapter 2).
* :mod:`dit_lib.sampling` — backward SDE/ODE samplers (chapter 3).
* :mod:`dit_lib.metrics` — distribution distances and the measurements of Corollary 3.2.1 (chapter 3).
* :mod:`dit_lib.experiments` — sample-complexity runners, attention ablations, generated-sample quality (chapters 3, 7).
* :mod:`dit_lib.realdata` — the bundled 8 x 8 digits, a Gaussian baseline and a real-digit classifier (chapter 7).
* :mod:`dit_lib.gradients` — the training loss of DiT attention, its exact gradient and the chained low-rank
  gradient (chapter 5).
* :mod:`dit_lib.polynomial` — polynomial approximations of ``exp`` on ``[-B^2, B^2]`` (chapter 4).
* :mod:`dit_lib.attention` — exact, SDPA, polynomial-method and Performer attention (chapters 4–6).
* :mod:`dit_lib.instances` — attention instances with a given entry bound, random and planted-pair (chapter 4).
* :mod:`dit_lib.complexity` — the cost model, feature ranks and the phase diagram (chapter 4).
* :mod:`dit_lib.efficient` — a latent DiT trained through polynomial attention; bounded keys and queries;
  timings (chapter 6).
* :mod:`dit_lib.benchreport` — reads the benchmark results files and draws them (benchmarks page).
* :mod:`dit_lib.figures`, :mod:`dit_lib.widgets` — plotting and explorers that work live and in static HTML.
"""
from . import attention, benchreport, complexity, data, diffusion, efficient, experiments, figures, gradients, \
    instances, metrics, network, patches, polynomial, realdata, sampling, scores, training, widgets
from .data import GaussianMixture, SubspaceData, default_mixture, estimate_subspace, projection_distance, \
    random_orthonormal_basis, subspace_angles
from .diffusion import beta, forward_sample, sigma
from .figures import setup_notebook
from .patches import patch_choices, patch_geometry, patchify, token_entry_bound, unpatchify
from .widgets import LiveRange, explorer

__version__ = "0.1.0"
